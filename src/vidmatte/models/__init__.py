"""Matting networks (AdaM, MSG-VIM), their backbones and the registry of named configurations."""
