"""KAWHI itself: head masking, q/k capture, SGUF regions, segments and harmonic credit weights (METHOD.md)."""
