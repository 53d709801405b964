"""Evaluation through lm-eval: tasks, per-benchmark scorers, the code sandbox."""
