"""MSG-VIM: mask-sequence-guided video instance matting (Li et al., WACV 2024)."""
