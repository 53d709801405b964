"""Head identification: the global head-ablation sweep over MME."""
