"""Losses, trainer, stages and checkpoints."""
