"""The GPU path of ``kawhi train``: the exact ``accelerate launch`` command line for multi-GPU runs.

On the paper profile the same ``kawhi train`` arguments run under ``accelerate launch`` with a
DeepSpeed ZeRO-3 or FSDP config (``config/accelerate/<zero3|fsdp>.yaml``, written by the lead), and the
``training`` block switches on bf16 and vLLM colocated rollouts. ``build_launch_command`` only builds
the argv -- it needs no GPU, so CPU tests check it -- and ``check_launch`` fails clearly where the
machine cannot run it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Sequence

ACCELERATE_CONFIGS = {"deepspeed_zero3": "config/accelerate/zero3.yaml", "zero3": "config/accelerate/zero3.yaml",
                      "fsdp": "config/accelerate/fsdp.yaml"}


class LaunchError(RuntimeError):
    """The requested launch cannot run on this machine (no GPU, unknown backend, missing config)."""


def accelerate_config_file(distributed: str) -> str:
    """``config/accelerate/<zero3|fsdp>.yaml`` for a ``training.distributed`` value."""
    try:
        return ACCELERATE_CONFIGS[distributed]
    except KeyError:
        raise LaunchError(f"training.distributed='{distributed}' has no accelerate config; use one of "
                          f"{sorted(ACCELERATE_CONFIGS)} or 'none'") from None


def build_launch_command(argv: list[str], n_gpus: int, distributed: str) -> list[str]:
    """The command that runs ``kawhi train <argv>``.

    ``distributed == "none"`` or one GPU: ``python -m kawhi.cli train ...`` in this process's Python.
    Otherwise ``accelerate launch --config_file config/accelerate/<zero3|fsdp>.yaml --num_processes N
    -m kawhi.cli train ...``. ``argv`` are the train arguments (without the ``train`` word).
    """
    argv = [a for a in argv if a != "--launch"]
    if n_gpus < 0:
        raise LaunchError(f"n_gpus must be >= 0, got {n_gpus}")
    if distributed == "none" or n_gpus <= 1:
        return [sys.executable, "-m", "kawhi.cli", "train", *argv]
    return ["accelerate", "launch", "--config_file", accelerate_config_file(distributed),
            "--num_processes", str(n_gpus), "-m", "kawhi.cli", "train", *argv]


def check_launch(command: Sequence[str], n_gpus_available: int, repo_root: str | Path = ".") -> None:
    """Raise LaunchError when ``command`` needs GPUs, accelerate or a config file this machine lacks."""
    if command[:2] != ["accelerate", "launch"]:
        return
    wanted = int(command[command.index("--num_processes") + 1])
    if n_gpus_available < wanted:
        raise LaunchError(f"multi-GPU training wants {wanted} GPUs but {n_gpus_available} are visible; "
                          "set training.distributed: none to train on one device")
    if shutil.which("accelerate") is None:
        raise LaunchError("the 'accelerate' launcher is not on PATH")
    config = Path(repo_root) / command[command.index("--config_file") + 1]
    if not config.exists():
        raise LaunchError(f"accelerate config {config} does not exist")
