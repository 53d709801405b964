"""Session-wide fixtures: tiny models and synthetic suites are built once and shared by all tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
ARCHS = ("qwen2_5_vl", "qwen3_vl")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory):
    """``factory(arch) -> Path``: a tiny model directory (model + processor), built once per arch."""
    from kawhi.models.tiny import build_tiny_model

    cache: dict[str, Path] = {}

    def factory(arch: str) -> Path:
        if arch not in cache:
            out = tmp_path_factory.mktemp(f"tiny-{arch}") / "model"
            build_tiny_model(arch=arch, out_dir=out, seed=0)
            cache[arch] = out
        return cache[arch]

    return factory


@pytest.fixture(scope="session", params=ARCHS)
def tiny_model_dir(request, tiny_model_factory) -> Path:
    """A tiny model directory, once for each architecture."""
    return tiny_model_factory(request.param)


@pytest.fixture(scope="session")
def suite_factory(tmp_path_factory):
    """``factory(suite, split="test", n=24, seed=0) -> Path`` of a synthetic parquet, built once."""
    from kawhi.data.synthetic import write_suite

    cache: dict[tuple, Path] = {}

    def factory(suite: str, split: str = "test", n: int = 24, seed: int = 0) -> Path:
        key = (suite, split, n, seed)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"data-{suite}") / f"{split}.parquet"
            write_suite(suite=suite, split=split, n=n, seed=seed, out=out)
            cache[key] = out
        return cache[key]

    return factory


@pytest.fixture
def train_job_benchmark(repo_root, tmp_path):
    """``run(script) -> list[str]``: a benchmarks/ script over whole `kawhi train` jobs (train_job_turns.py) at its
    smallest size (one 1-step job per setting, one turn), end to end; the words of its last line."""
    import subprocess
    import sys

    def run(script: str) -> list[str]:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TMPDIR=str(tmp_path))
        proc = subprocess.run([sys.executable, str(repo_root / "benchmarks" / script), "--steps", "1", "--pairs", "1",
                               "--jobs", "1"], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout.strip().splitlines()[-1].split()

    return run
