"""Synthetic and real data sets, compositing and augmentation."""
