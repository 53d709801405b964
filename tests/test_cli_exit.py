"""kawhi.cli.run, the `kawhi` console script: main's exit code, and the objects frozen before shutdown."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest

from kawhi import cli


def test_the_console_script_is_run(repo_root):
    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["kawhi"] == "kawhi.cli:run"


@pytest.mark.parametrize("code", [0, 2])
def test_run_freezes_then_exits_with_mains_code(monkeypatch, code):
    calls = []
    monkeypatch.setattr(cli, "main", lambda: calls.append("main") or code)
    monkeypatch.setattr(cli.gc, "freeze", lambda: calls.append("freeze"))  # never freeze pytest's own heap
    with pytest.raises(SystemExit) as exit_:
        cli.run()
    assert exit_.value.code == code
    assert calls == ["main", "freeze"]


def test_a_real_kawhi_process_writes_its_output_and_exits_cleanly(tmp_path):
    """The frozen exit keeps what a job writes: atexit handlers, flushes and the exit code all still happen."""
    out = tmp_path / "suite.parquet"
    script = ("import atexit, sys; atexit.register(lambda: print('atexit ran', flush=True)); "
              "from kawhi.cli import run; sys.argv = ['kawhi'] + sys.argv[1:]; run()")
    proc = subprocess.run([sys.executable, "-c", script, "make-data", "--suite", "shapes_count", "--split", "test",
                           "--n", "4", "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.exists() and out.stat().st_size > 0
    assert proc.stdout.strip().endswith("atexit ran")


def test_the_benchmark_compares_both_exits_on_real_jobs(train_job_benchmark):
    """benchmarks/exit_freeze.py end to end, smallest size: one 1-step job per setting, byte-identical weights."""
    last = train_job_benchmark("exit_freeze.py")
    assert last[0::2] == ["exit_saving_s", "wall_ratio", "identical_weights"]
    assert float(last[3]) > 0
    assert last[5] == "true"
