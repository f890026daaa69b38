"""Inference engines, tiling and image I/O. Never imports torch."""
