"""Inference sessions and video-level matting."""
