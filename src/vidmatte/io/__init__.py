"""Reading and writing frames, videos and masks."""
