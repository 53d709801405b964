"""Tiny Qwen-VL-class model building, loading and the SFT warm-start."""
