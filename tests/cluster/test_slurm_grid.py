"""A reduced embedded grid, sent to a real single-node Slurm cluster through the Slurm profile.

On only when KAWHI_SLURM_TESTS=1 (`.ci/run` sets it); it needs root and apt (or slurm-wlm installed) and
skips with the reason otherwise. Checks, from Slurm's own job-completion records, that every job ran under
Slurm, and that the outputs are byte-identical to a local run of the same targets.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster.single_node import PARTITION, ClusterUnavailable, SingleNodeSlurm

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(os.environ.get("KAWHI_SLURM_TESTS") != "1", reason="set KAWHI_SLURM_TESTS=1 to run"),
]

REDUCED_TARGETS = [
    "results/data/shapes_count/test.parquet",
    "results/data/bars_lookup/test.parquet",
    "results/models/qwen25vl-tiny/base",
]


def _reduced_config(repo_root: Path) -> dict:
    config = yaml.safe_load((repo_root / "config" / "config.yaml").read_text())
    config["models"] = {"qwen25vl-tiny": config["models"]["qwen25vl-tiny"]}
    config["synthetic"].update(n_train=16, n_test=16, n_heads_bench=8)
    return config


def _workdir(tmp: Path, repo_root: Path) -> Path:
    work = tmp
    (work / "config").mkdir(parents=True)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(_reduced_config(repo_root)))
    return work


def _snakemake(repo_root: Path, workdir: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    # targets first: several options (--configfile, --default-resources) take a list of values
    cmd = [sys.executable, "-m", "snakemake", *REDUCED_TARGETS, "-s", str(repo_root / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(workdir / "config" / "config.yaml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)


def _same_result(a: Path, b: Path) -> bool:
    """Byte-equal, except that a JSON result's provenance block (time, host) may differ."""
    if a.suffix == ".json":
        left, right = json.loads(a.read_text()), json.loads(b.read_text())
        left.pop("provenance", None), right.pop("provenance", None)
        return left == right
    return filecmp.cmp(a, b, shallow=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        slurm = SingleNodeSlurm(tmp_path_factory.mktemp("slurm-state")).start()
    except ClusterUnavailable as err:
        pytest.skip(f"no Slurm cluster here: {err}")
    try:
        yield slurm
    finally:
        slurm.stop()


def test_reduced_grid_under_slurm_matches_local_run(cluster, repo_root, tmp_path, capsys):
    env = cluster.env()
    env.update(KAWHI_SLURM_ACCOUNT="", KAWHI_SLURM_PARTITION=PARTITION, OMP_NUM_THREADS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    slurm_dir = _workdir(tmp_path / "slurm", repo_root)
    proc = _snakemake(
        repo_root, slurm_dir,
        "--profile", str(repo_root / "config" / "profiles" / "slurm"),
        "--slurm-no-account", "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "2", "--jobs", "4",
        "--default-resources", f"slurm_partition='{PARTITION}'", "mem_mb=2000", "runtime=30", "cpus_per_task=1",
        env=env,
    )
    log = proc.stdout + proc.stderr
    (slurm_dir / "snakemake-slurm.log").write_text(log)
    assert proc.returncode == 0, log[-4000:]

    # the plugin logs "Job N has been submitted with SLURM jobid M (log: ...)"
    submitted_ids = set(re.findall(r"submitted with SLURM jobid (\d+)", log))
    records = {r["JobId"]: r for r in cluster.job_records()}
    with capsys.disabled():
        print(f"\nsbatch job ids submitted by Snakemake: {sorted(submitted_ids, key=int)}")
        print("Slurm job-completion records:", {k: (v["Name"], v["JobState"]) for k, v in records.items()})
    assert submitted_ids, f"no Slurm job id in Snakemake's log:\n{log[-3000:]}"
    assert submitted_ids <= set(records), "a submitted job has no Slurm completion record"
    assert all(records[j]["JobState"] == "COMPLETED" for j in submitted_ids)
    # one Slurm job per Snakemake job: the two suites and the model build
    assert len(submitted_ids) == len(REDUCED_TARGETS)

    local_dir = _workdir(tmp_path / "local", repo_root)
    local = _snakemake(repo_root, local_dir, "--cores", "2",
                       env=dict(os.environ, OMP_NUM_THREADS="1", PATH=env["PATH"]))
    assert local.returncode == 0, (local.stdout + local.stderr)[-3000:]
    for target in REDUCED_TARGETS:
        a, b = slurm_dir / target, local_dir / target
        if a.is_dir():
            cmp = filecmp.dircmp(a, b)
            assert not (cmp.left_only or cmp.right_only), f"{target}: {cmp.left_only} / {cmp.right_only}"
            for name in cmp.common_files:
                assert _same_result(a / name, b / name), f"{target}/{name} differs"
        else:
            assert filecmp.cmp(a, b, shallow=False), f"{target} differs between the Slurm and the local run"
