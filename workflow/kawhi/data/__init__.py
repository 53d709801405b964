"""Synthetic suites, prompts and benchmark preparation to local parquet."""
