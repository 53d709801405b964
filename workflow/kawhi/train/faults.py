"""What a killed or starved training run leaves behind, and how the next start deals with it.

- ``clean_leftovers``: temporaries of a run killed mid-write (``.final.*.tmp`` from the atomic final
  save, ``tmp-checkpoint-*`` and checkpoints without a trainer state) are removed on the next start;
  nothing else reads them, and a torn checkpoint would only be skipped forever.
- ``checkpoint_step``: the optimizer step a checkpoint holds, from its ``trainer_state.json``. A run whose
  newest checkpoint is at ``max_steps`` has finished training; run.py then writes ``final/`` from that
  checkpoint instead of resuming it (transformers' resume would train one more step).
- ``disk_full_errors``: a full disk while torch or safetensors writes a checkpoint surfaces as
  ``RuntimeError: enforce fail at inline_container.cc ... unexpected pos`` or a bare ``OSError``; it is
  re-raised as ``DiskFullError`` naming the directory and its free space.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import shutil
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

# Messages torch's zip writer and safetensors give for a write the disk could not take.
_DISK_FULL_MARKERS = ("unexpected pos", "No space left", "file write failed", "Disk quota exceeded")


class DiskFullError(OSError):
    """A write under a run directory failed because the disk (or quota) is full."""


def clean_leftovers(out: Path) -> list[Path]:
    """Remove the temporaries a killed run left in ``out``; return what was removed."""
    removed = []
    candidates = list(out.glob(".*.tmp"))  # kawhi.atomic.atomic_path's temporaries (.final.*.tmp, ...)
    checkpoints = out / "checkpoints"
    if checkpoints.is_dir():
        candidates += list(checkpoints.glob("tmp-checkpoint-*"))
        candidates += [p for p in checkpoints.glob("checkpoint-*")
                       if p.is_dir() and not (p / "trainer_state.json").exists()]
    for path in candidates:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    if removed:
        log.warning("removed leftovers of an interrupted run: %s", ", ".join(str(p) for p in removed))
    return removed


def checkpoint_step(checkpoint: Path) -> int:
    """``global_step`` of a complete checkpoint (its ``trainer_state.json``)."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    step = state.get("global_step") if isinstance(state, dict) else None
    if not isinstance(step, int):
        raise ValueError(f"{checkpoint / 'trainer_state.json'}: no integer global_step")
    return step


def _is_disk_full(err: BaseException) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(err, (OSError, RuntimeError)) and any(m in str(err) for m in _DISK_FULL_MARKERS)


@contextlib.contextmanager
def disk_full_errors(directory: Path, what: str) -> Iterator[None]:
    """Re-raise a full-disk failure inside the block as ``DiskFullError`` naming ``directory``."""
    try:
        yield
    except DiskFullError:
        raise
    except (OSError, RuntimeError) as err:
        if not _is_disk_full(err):
            raise
        try:
            free = f"{shutil.disk_usage(directory).free / 2**20:.0f} MiB free there now"
        except OSError:
            free = "free space unknown"
        raise DiskFullError(
            errno.ENOSPC,
            f"disk full while {what} in {directory} ({free}). Free space, move the results directory, or "
            f"set training.save_total_limit to keep fewer checkpoints; the run resumes from its newest "
            f"complete checkpoint when started again. Original error: {str(err).splitlines()[0][:300]}",
        ) from err
