"""Other projects' networks, written from their papers with random weights, to time vidmatte beside them.

Nothing here is trained, shipped or imported by the package.
"""
