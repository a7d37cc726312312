"""Feature extractors shared by the matting networks."""
