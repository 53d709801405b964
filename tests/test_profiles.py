"""The Slurm and local profiles: the paper grid's dry run through the Slurm profile shows each job's resources."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml


def _dry_run(repo_root, *args):
    env = dict(os.environ, KAWHI_SLURM_ACCOUNT="proj123", KAWHI_SLURM_PARTITION="gpu")
    cmd = [sys.executable, "-m", "snakemake", "-n", "-s", str(repo_root / "Snakefile"), "--directory", str(repo_root),
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def _resources_by_rule(output: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        res = re.search(r"^\s+resources: (.+)$", block, re.M)
        if rule and res:
            found.setdefault(rule.group(1), []).append(res.group(1))
    return found


STAGE_OF_RULE = {"identify_heads": "heads", "train": "training", "evaluate_base_qwen25vl_7b": "eval",
                 "evaluate_base_qwen3vl_4b": "eval", "evaluate_math_run": "eval", "evaluate_chart_run": "eval"}


def test_paper_dry_run_through_the_slurm_profile_shows_the_configs_resources(repo_root):
    """Resources come from the config alone: every heavy job gets exactly its stage's ``resources`` block
    (config/paper.yaml: training 256000 MB for 2880 min), and the profile adds only account and partition."""
    proc = _dry_run(repo_root, "--profile", "config/profiles/slurm", "--configfile", "config/paper.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    resources = _resources_by_rule(proc.stdout + proc.stderr)
    paper = yaml.safe_load((repo_root / "config/paper.yaml").read_text())
    assert paper["training"]["resources"]["mem_mb"] == 256000 and paper["training"]["resources"]["runtime"] == 2880
    for rule, stage in STAGE_OF_RULE.items():
        want = paper[stage]["resources"]
        for line in resources[rule]:
            for key in ("mem_mb", "runtime", "gpu"):
                assert f"{key}={want[key]}," in line + ",", (rule, key, line)
            # No cpus_per_task anywhere: the plugin then asks Slurm for --cpus-per-task = the rule's threads.
            assert "cpus_per_task" not in line, (rule, line)
            assert "slurm_partition=gpu" in line and "slurm_account=proj123" in line
    # one train job per run of the paper grid (main, baselines, chart, sweeps; tests/test_paper_dryrun.py)
    from kawhi.config import load_config
    from tests.test_paper_dryrun import _expected_runs

    runs = set().union(*_expected_runs(load_config(repo_root / "config" / "paper.yaml")).values())
    assert len(resources["train"]) == len(runs)


def test_profiles_use_the_slurm_executor_and_a_gpu_resource(repo_root):
    slurm = yaml.safe_load((repo_root / "config/profiles/slurm/config.yaml").read_text())
    local = yaml.safe_load((repo_root / "config/profiles/local/config.yaml").read_text())
    assert slurm["executor"] == "slurm" and slurm["retries"] >= 1 and slurm["latency-wait"] >= 60
    assert slurm["jobs"] >= 1
    assert "set-resources" not in slurm  # it would override the config's resources silently
    assert "gpu" in local["resources"]


def test_accelerate_configs_exist_for_every_distributed_backend(repo_root):
    from kawhi.train.launch import ACCELERATE_CONFIGS

    for path in set(ACCELERATE_CONFIGS.values()):
        config = yaml.safe_load((repo_root / path).read_text())
        assert config["distributed_type"] in ("DEEPSPEED", "FSDP")


def test_gpu_paths_fail_clearly_without_a_gpu(monkeypatch):
    import pytest

    from kawhi import gpu

    monkeypatch.setattr(gpu, "cuda_device_count", lambda: 0)
    with pytest.raises(gpu.GPUUnavailableError, match="vLLM evaluation needs 1 CUDA GPU"):
        gpu.require_gpus("vLLM evaluation")
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "4")
    assert gpu.job_gpu_count() == 4


def test_vllm_evaluation_shards_over_the_jobs_gpus():
    import pytest

    from kawhi.eval.runner import BackendUnavailableError, vllm_parallelism

    assert vllm_parallelism(1) == {"tensor_parallel_size": 1}
    assert vllm_parallelism(8) == {"tensor_parallel_size": 8}
    with pytest.raises(BackendUnavailableError):
        vllm_parallelism(0)
