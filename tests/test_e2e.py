"""The embedded grid end to end through Snakemake, on a reduced copy of the default config.

One tiny model, one seed, a few dozen synthetic rows and a couple of RL steps per run, so that CI runs the
whole pipeline (build, data, SFT, heads, every training run of the grid once: main runs, fine-grained
baselines, chart runs, ablations and sweeps; evaluations, every table and figure, the HTML report) in
minutes. Then: a second run schedules nothing, and changing one variant's hyperparameter
schedules only that run's training, its evaluations and the artefacts that read them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

# every artefact rule all builds (rules/report.smk's REPORT_TARGETS); test_paper_dryrun checks the list against
# the reduced config's dry run
REPORT_ARTEFACTS = [
    "table1.csv", "table1.md", "table1.tex", "table2.csv", "table2.md", "table2.tex",
    "figure1.png", "figure1.pdf", "figure1.json", "figure3.png", "figure3.pdf",
    "figure4.png", "figure4.pdf", "figure4.csv", "figure4.md", "figure4.tex",
    "figure5.png", "figure5.pdf", "figure5.csv",
    "figure7.png", "figure7.pdf", "figure7.csv", "figure7.md", "figure7.tex",
    "selector.png", "selector.pdf", "selector.csv", "selector.md", "selector.tex",
    "curves.png", "curves.pdf", "curves.csv", "gallery.png", "gallery.pdf",
    "summary.json", "summary.md", "headline.rst", "warmstart.csv", "warmstart.md",
]


def reduced_config(repo_root: Path) -> dict:
    config = yaml.safe_load((repo_root / "config" / "config.yaml").read_text())
    config["models"] = {"qwen25vl-tiny": config["models"]["qwen25vl-tiny"]}
    config["synthetic"].update(n_train=24, n_test=12, n_heads_bench=8)
    config["sft"].update(max_steps=10, batch_size=8)
    config["training"].update(max_steps=2, per_device_train_batch_size=4, num_generations=2,
                              max_completion_length=16, save_steps=1)
    config["eval"].update(max_new_tokens=16, batch_size=12)
    # one seed: every run of the grid once (every variant and baseline stays, so every rule runs)
    config["grid"].update(seeds=[0], ablation_seeds=[0])
    return config


def expected_runs(config: dict) -> int:
    """Training runs of a one-model, one-seed grid: main runs, baselines, chart runs, then the sweeps not in them."""
    grid = config["grid"]
    main = {(a, v) for a in grid["algorithms"] for v in grid["variants"]}
    sweeps = {(grid["ablation_algorithm"], v) for v in grid["ablation_variants"] + grid["skip_ratio_variants"]
              + grid["selector_variants"]}
    return len(main | sweeps) + len(grid["baselines"]) + len(grid["variants"])


def snakemake(repo_root: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo_root / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=2400)


def scheduled_jobs(dry_run_output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a `snakemake -n` run lists."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", dry_run_output):
        head = re.match(r"(?:local)?rule (\w+):", block)
        if not head:
            continue
        wildcards = {}
        found = re.search(r"^\s+wildcards: (.+)$", block, re.M)
        if found:
            wildcards = dict(part.split("=", 1) for part in found.group(1).split(", "))
        jobs.append((head.group(1), wildcards))
    return jobs


@pytest.fixture(scope="module")
def grid(repo_root, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e")
    (workdir / "config.yaml").write_text(yaml.safe_dump(reduced_config(repo_root)))
    proc = snakemake(repo_root, workdir, "--cores", "2")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return workdir


def test_every_artefact_is_built(grid, repo_root):
    for name in REPORT_ARTEFACTS:
        path = grid / "results" / "report" / name
        assert path.exists() and path.stat().st_size > 0, f"missing {path}"
    assert (grid / "results" / "heads" / "qwen25vl-tiny" / "critical_heads.json").exists()
    runs = list((grid / "results" / "train").glob("*/*/*/*/seed-*/done.json"))  # model/trainset/algo/variant/seed
    config = yaml.safe_load((grid / "config.yaml").read_text())
    assert len(runs) == expected_runs(config)
    assert {r.parts[-5] for r in runs} == {"math", "chart"}
    proc = snakemake(repo_root, grid, "--report", "results/report.html")
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (grid / "results" / "report.html").read_text(errors="replace")
    assert "table1" in html.lower() and "figure3" in html.lower()


def test_second_run_schedules_nothing(grid, repo_root):
    proc = snakemake(repo_root, grid, "-n", "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert scheduled_jobs(proc.stdout + proc.stderr) == [], (proc.stdout + proc.stderr)[-3000:]


def test_one_variant_change_reschedules_only_what_reads_it(grid, repo_root):
    config = yaml.safe_load((grid / "config.yaml").read_text())
    config["variants"]["kawhi-kk"]["lam"] = 0.3
    changed = grid / "config-changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    (grid / "config.yaml").rename(grid / "config-orig.yaml")
    changed.rename(grid / "config.yaml")
    try:
        proc = snakemake(repo_root, grid, "-n", "--cores", "2")
    finally:
        (grid / "config.yaml").rename(changed)
        (grid / "config-orig.yaml").rename(grid / "config.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = scheduled_jobs(proc.stdout + proc.stderr)
    rules = [rule for rule, _ in jobs]
    assert rules.count("train") == 1
    assert all(w.get("variant") == "kawhi-kk" for rule, w in jobs if rule in ("train", "evaluate_math_run"))
    assert "evaluate_math_run" in rules
    for untouched in ("build_model", "make_data", "sft_warmstart", "identify_heads", "evaluate_base", "make_table1"):
        assert not any(r.startswith(untouched) for r in rules), \
            f"{untouched} was rescheduled by a change to kawhi-kk only: {rules}"
    assert "make_table2" in rules
