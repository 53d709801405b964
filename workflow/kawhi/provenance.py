"""The provenance block that every result JSON carries."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from kawhi.config import settings_json

TRACKED_PACKAGES = ("kawhi", "torch", "transformers", "trl", "datasets", "accelerate", "lm_eval",
                    "math_verify", "snakemake", "tokenizers")


def config_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(settings_json(settings).encode()).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_revision(cwd: str | Path | None = None) -> str:
    cwd = cwd or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(settings: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
    """Config hash, seed, package versions, git revision, host and time of one result."""
    return {
        "config_hash": config_hash(settings),
        "seed": settings.get("seed", seed) if seed is None else seed,
        "packages": package_versions(),
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "host": platform.node(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
