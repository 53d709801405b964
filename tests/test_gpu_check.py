"""benchmarks/gpu_check.py's CPU dry mode: every section runs and the output is the documented JSON line."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow  # six sections at tiny sizes, each in its own process: ~2 min on a shared CPU
def test_gpu_check_dry_mode(repo_root):
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry"], cwd=repo_root, capture_output=True,
                          text=True, timeout=600)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(lines[0])
    assert out["mode"] == "dry" and out["device"] == "cpu" and set(out["versions"]) == {"torch", "transformers", "trl"}
    sections = out["sections"]
    assert list(sections) == ["train_grpo", "train_dapo", "train_gspo", "capture", "kawhi_overhead", "head_sweep"]
    failed = {k: v for k, v in sections.items() if v["status"] not in ("ok", "absent")}
    assert not failed and out["ok"] and proc.returncode == 0, failed
    for algo in ("grpo", "dapo", "gspo"):
        train = sections[f"train_{algo}"]
        assert train["steps"] == 1 and train["dtype"] == "float32" and train["step_time_s"] > 0
    capture = sections["capture"]
    assert capture["fp32_max_abs"] <= capture["fp32_atol"] and capture["bf16_max_abs"] <= capture["bf16_atol"]
    assert sections["head_sweep"]["sweep_ratio"] > 0
    if sections["kawhi_overhead"]["status"] == "ok":  # the script is owned by the method work; absent is allowed
        assert sections["kawhi_overhead"]["overhead_ratio"] > 0
