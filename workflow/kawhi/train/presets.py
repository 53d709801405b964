"""Algorithm presets: the run's settings (``kawhi.config.train_settings``) -> ``trl.GRPOConfig``.

- GRPO: ``loss_type="grpo"`` (sequence-mean of token losses, symmetric clip).
- DAPO: ``loss_type="dapo"`` (token-level normalisation), clip-higher ``epsilon_high=0.28``, dynamic
  sampling (ours, :mod:`kawhi.train.dynamic_sampling`) and TRL's soft overlong punishment reward.
- GSPO: ``importance_sampling_level="sequence"`` with TRL's published values ``epsilon=3e-4``,
  ``epsilon_high=4e-4``.

The numbers live in the config (``algorithms.*``); this module only maps keys onto TRL's names and
chooses the device-dependent switches (bf16, vLLM) that the ``training`` block asks for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kawhi.gpu import GPUUnavailableError  # noqa: F401 (re-exported: raised for bf16/vLLM on CPU)
from kawhi.config import AlgorithmSettings

# AlgorithmSettings fields that are not GRPOConfig arguments (DAPO extras we implement ourselves).
_NOT_GRPO_CONFIG = {"name", "dynamic_sampling", "dynamic_sampling_max_tries", "overlong_punishment",
                    "overlong_buffer",
                    "vppo", "step_grpo"}  # the baselines' blocks (kawhi.train.baselines); FT-RL's key is TRL's own


def algorithm_from_settings(settings: dict[str, Any]) -> AlgorithmSettings:
    """The run's AlgorithmSettings from the settings dict (which stores it as a plain dict)."""
    return AlgorithmSettings(**settings["algorithm"])


def check_device_settings(training: dict[str, Any], cuda_available: bool | None = None) -> None:
    """Fail early and clearly when the config asks for GPU-only features on a CPU machine."""
    if cuda_available is None:
        from kawhi.gpu import cuda_device_count

        cuda_available = cuda_device_count() > 0
    if cuda_available:
        return
    wanted = [key for key in ("bf16", "use_vllm") if training.get(key)]
    if wanted:
        raise GPUUnavailableError(
            f"training.{wanted[0]}=true needs a CUDA GPU, and none is visible here. Use the embedded default "
            f"config (config/config.yaml) on CPU, or run the paper profile on a GPU node."
        )


def world_size() -> int:
    """Processes of this run: accelerate's WORLD_SIZE under `accelerate launch`, else 1."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1"))


def gradient_accumulation_steps(training: dict[str, Any], processes: int | None = None) -> int:
    """``training.gradient_accumulation_steps`` (default 1), or the steps that make one optimiser step
    take ``training.prompts_per_step`` prompts (x ``num_generations`` completions) over every process.

    TRL then generates once per optimiser step (its ``steps_per_generation`` defaults to this value), as
    verl does with one update per train batch.
    """
    if "prompts_per_step" not in training:
        return int(training.get("gradient_accumulation_steps", 1))
    processes = world_size() if processes is None else processes
    completions = int(training["prompts_per_step"]) * int(training["num_generations"])
    per_step = int(training["per_device_train_batch_size"]) * processes
    if completions % per_step:
        raise ValueError(f"training.prompts_per_step={training['prompts_per_step']} x num_generations="
                         f"{training['num_generations']} = {completions} completions is not a multiple of "
                         f"per_device_train_batch_size={training['per_device_train_batch_size']} x {processes} "
                         f"process(es)")
    return completions // per_step


def grpo_config_kwargs(settings: dict[str, Any], output_dir: str | Path) -> dict[str, Any]:
    """Keyword arguments for ``trl.GRPOConfig`` (kept separate so tests can inspect them without TRL)."""
    algo = algorithm_from_settings(settings)
    training = settings["training"]
    kwargs: dict[str, Any] = {
        "output_dir": str(output_dir),
        "seed": int(settings["seed"]),
        "data_seed": int(settings["seed"]),
        "max_steps": int(training["max_steps"]),
        "learning_rate": float(training["learning_rate"]),
        "lr_scheduler_type": str(training["lr_scheduler_type"]),
        "per_device_train_batch_size": int(training["per_device_train_batch_size"]),
        "gradient_accumulation_steps": gradient_accumulation_steps(training),
        "num_generations": int(training["num_generations"]),
        "max_completion_length": int(training["max_completion_length"]),
        "temperature": float(training["temperature"]),
        "save_strategy": "steps",
        "save_steps": int(training["save_steps"]),
        # TRL/transformers' own rotation: the oldest checkpoints beyond this many are deleted (None keeps all)
        "save_total_limit": (int(training["save_total_limit"]) if training.get("save_total_limit") is not None
                             else None),
        "logging_steps": int(training["logging_steps"]),
        "gradient_checkpointing": bool(training["gradient_checkpointing"]),
        "bf16": bool(training["bf16"]),
        "use_vllm": bool(training["use_vllm"]),
        "report_to": training["report_to"],
        "dataloader_num_workers": 0,
        "remove_unused_columns": False,  # the rewards read the answer/options columns
        "log_completions": False,
        "disable_tqdm": False,
    }
    if kwargs["use_vllm"]:
        kwargs["vllm_mode"] = training["vllm_mode"]
        kwargs["vllm_gpu_memory_utilization"] = float(training["vllm_gpu_memory_utilization"])
    for field_name, value in vars(algo).items():
        if field_name not in _NOT_GRPO_CONFIG:
            kwargs[field_name] = value
    return kwargs


def build_grpo_config(settings: dict[str, Any], output_dir: str | Path, reward_weights: list[float] | None = None,
                      cuda_available: bool | None = None):
    """A ``trl.GRPOConfig`` for this run; raises GPUUnavailableError for GPU-only settings on CPU."""
    from trl import GRPOConfig

    check_device_settings(settings["training"], cuda_available)
    kwargs = grpo_config_kwargs(settings, output_dir)
    if reward_weights is not None:
        kwargs["reward_weights"] = list(reward_weights)
    import torch

    if not torch.cuda.is_available():
        kwargs["use_cpu"] = True
    return GRPOConfig(**kwargs)
