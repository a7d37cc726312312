"""Matting metrics (pure functions on arrays) and the folder evaluators that apply them."""
