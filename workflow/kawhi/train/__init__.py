"""RL training: the TRL GRPOTrainer subclass with the KAWHI plug-in, rewards, presets."""
