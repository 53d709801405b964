"""Table 1's fine-grained reward baselines, each on the same TRL GRPOTrainer as KAWHI.

- FT-RL ("Beyond the 80/20 rule"): TRL's own ``GRPOConfig.top_entropy_quantile`` (the policy gradient on
  the top 20 % of tokens by entropy); nothing here, the algorithm preset sets the key.
- VPPO (:mod:`.vppo`): a trainer mixin (perturbed-image forward, token filter, advantage shaping).
- Step-GRPO (:mod:`.step_grpo`): reward functions (StepRAR, StepRVR) and the key-step column.
"""
