"""Real-trained person segmentation, detection and tracks."""
