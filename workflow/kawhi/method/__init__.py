"""KAWHI itself: head masking, q/k capture, pixel SGUF, token selection, segments, alignment and paragraph weights (METHOD.md)."""
