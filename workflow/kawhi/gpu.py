"""GPU checks: every GPU-only path asks here first and fails at once with a clear message, never hangs."""

from __future__ import annotations

import os


class GPUUnavailableError(RuntimeError):
    """A GPU-only path (vLLM, bf16 training, multi-GPU launch) was asked for on a machine without one."""


def cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def require_gpus(what: str, n: int = 1) -> int:
    """Return the number of visible CUDA devices, or raise naming ``what`` needed them and how to run without."""
    found = cuda_device_count()
    if found < n:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        raise GPUUnavailableError(
            f"{what} needs {n} CUDA GPU(s) but {found} visible{hint}. On a CPU machine use the embedded "
            "default config (config/config.yaml: eval.backend hf, training.use_vllm false, bf16 false), "
            "or run this job on a GPU node (--profile config/profiles/slurm).")
    return found


def job_gpu_count() -> int:
    """GPUs granted to this job: Slurm's allocation when inside one, else what CUDA sees."""
    for var in ("SLURM_GPUS_ON_NODE", "SLURM_GPUS"):
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return cuda_device_count()
