"""KAWHI reproduction pipeline."""
