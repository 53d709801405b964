"""Real checkpoints (paper profile): a hub id is fetched into the Hugging Face cache, a local path linked.

The pipeline's model directory is then a symbolic link to the snapshot (or the local directory), so a
7B checkpoint is never copied. With ``HF_HUB_OFFLINE=1`` and no cached snapshot, fetching fails at
once with the command that pre-downloads the model.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from kawhi.atomic import atomic_path

log = logging.getLogger(__name__)

# What a transformers checkpoint needs; skips other formats (gguf, onnx, original/ pth) on the hub.
CHECKPOINT_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken", "*.py"]


class ModelFetchError(RuntimeError):
    """A model source that cannot be fetched or found; the message names it and says what to do."""


def is_local_source(source: str) -> bool:
    """A filesystem path rather than a hub id ("org/name")."""
    return source.startswith(("/", "./", "../", "~")) or Path(source).expanduser().exists()


def fetch_model(source: str, out_dir: str | Path, revision: str | None = None) -> Path:
    """Make ``out_dir`` a link to the checkpoint named by ``source`` (hub id or local directory)."""
    out_dir = Path(out_dir)
    if is_local_source(source):
        target = Path(source).expanduser().resolve()
        if not (target / "config.json").exists():
            raise ModelFetchError(f"model source '{source}' is not a model directory (no {target}/config.json)")
    else:
        target = Path(_snapshot(source, revision))
    with atomic_path(out_dir) as tmp:
        os.symlink(target, tmp, target_is_directory=True)
    log.info("model %s -> %s", out_dir, target)
    return out_dir


def _snapshot(repo_id: str, revision: str | None) -> str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        return snapshot_download(repo_id, revision=revision, allow_patterns=CHECKPOINT_PATTERNS)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError, OSError) as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        why = "HF_HUB_OFFLINE is set and it is not in the Hugging Face cache" if offline else \
            "it could not be downloaded"
        raise ModelFetchError(
            f"model '{repo_id}': {why} ({type(err).__name__}: {err}). Pre-download it on a machine with "
            f"network: `hf download {repo_id}` (same HF_HOME as the pipeline), or point the config's "
            f"models.<name>.source at a local directory holding the checkpoint."
        ) from err
