"""Hand-made result files in the grid's formats, for the report tests (imported by tests/test_report_*.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kawhi.report.manifest import BASE_ROW, EvalEntry, HeadsEntry, RunEntry

MODELS = ("m-a", "m-b")
ALGOS = ("grpo", "dapo", "gspo")
MATH = ("shapes_count", "shapes_arith")
CHART = ("bars_lookup", "lines_compare", "chartqa")
ABLATIONS = ("kawhi-random", "kawhi-inverse", "kawhi-kk", "kawhi-token")
# what each fixture variant changes against full KAWHI (kawhi.config.variant_changes)
DETAILS = {"kawhi-random": "regions=random", "kawhi-inverse": "regions=inverse", "kawhi-kk": "metric=kk",
           "kawhi-token": "granularity=token"}
N_ITEMS = 400  # the fixtures' scores are multiples of 0.25: 400 items of 0/1 hit them exactly


def write_eval(path: Path, benchmark: str, score: float, model: str = "m", primary: str = "accuracy",
               extra_metrics: dict[str, float] | None = None, items: int | None = N_ITEMS) -> Path:
    """An eval JSON as the eval stage writes it (metrics in percent, the primary one named), and unless
    ``items`` is None the samples file beside it, whose per-item scores average to ``score``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = {primary: score, **(extra_metrics or {})}
    path.write_text(json.dumps({"benchmark": benchmark, "model": model, "checkpoint": str(path.parent),
                                "metrics": metrics, "primary": primary, "n": 100, "n_skipped": 0,
                                "scorer": "exact", "judge": None, "provenance": {"config_hash": "x"}}))
    if items is not None:
        write_samples(path, [{"id": f"q{i}", "score": s} for i, s in enumerate(item_scores_for(score, items))])
    return path


def item_scores_for(score: float, n: int = N_ITEMS) -> list[float]:
    """``n`` per-item scores in [0, 1] whose mean is ``score`` / 100: the first items right, one partly.

    Rows of one fixture share the item order, so a higher score is right on a superset of the items."""
    filled = score / 100 * n
    return [min(1.0, max(0.0, filled - i)) for i in range(n)]


def score_of(model: str, algo: str, variant: str, bench: str) -> float:
    """Deterministic, distinct numbers: base < algo < algo+KAWHI, ablations in between."""
    m = MODELS.index(model) if model in MODELS else 0
    b = (MATH + CHART).index(bench) if bench in MATH + CHART else 0
    base = 30.0 + 5 * m + 2 * b
    if algo == BASE_ROW:
        return base
    a = ALGOS.index(algo)
    run = base + 3.0 + a + 0.25 * b
    bonus = {"baseline": 0.0, "kawhi": 2.5 + 0.5 * a, "kawhi-random": 0.75, "kawhi-inverse": -0.5,
             "kawhi-kk": 1.25, "kawhi-token": 1.75}[variant]
    return run + bonus


def make_entry(root: Path, model: str, algo: str, variant: str, bench: str, seed: int | None = 0,
               trainset: str = "math") -> EvalEntry:
    """One seed's eval result (and its samples) of a row, laid out as the rules lay them out."""
    if algo == BASE_ROW:
        sub = root / "eval" / model / BASE_ROW / f"{bench}.json"
        write_eval(sub, bench, score_of(model, algo, variant, bench), model)
        return EvalEntry(model, BASE_ROW, "", bench, str(sub))
    sub = root / "eval" / model / trainset / algo / variant / f"seed-{seed}" / f"{bench}.json"
    write_eval(sub, bench, score_of(model, algo, variant, bench), model)
    return EvalEntry(model, algo, variant, bench, str(sub), variant != "baseline", trainset, seed,
                     DETAILS.get(variant, ""))


def table1_entries(root: Path, models=MODELS, algos=ALGOS, benches=MATH) -> list[EvalEntry]:
    entries = []
    for m in models:
        entries += [make_entry(root, m, BASE_ROW, "", b) for b in benches]
        entries += [make_entry(root, m, a, v, b) for a in algos for v in ("baseline", "kawhi") for b in benches]
    return entries


def table2_entries(root: Path, model=MODELS[0], benches=MATH) -> list[EvalEntry]:
    return [make_entry(root, model, "grpo", v, b) for v in ("baseline", "kawhi") + ABLATIONS for b in benches]


def figure4_entries(root: Path, model=MODELS[0], benches=CHART, base: bool = False) -> list[EvalEntry]:
    entries = [make_entry(root, model, BASE_ROW, "", b) for b in benches] if base else []
    return entries + [make_entry(root, model, "grpo", v, b, trainset="chart") for v in ("baseline", "kawhi")
                      for b in benches]


def write_run(root: Path, model: str, algo: str, variant: str, steps: int = 12, slope: float = 0.02,
              seed: int = 0, trainset: str = "math", step_time: float = 1.0) -> RunEntry:
    """A training run's metrics.jsonl (reward rising by ``slope`` a step, ``step_time`` seconds a step)."""
    run = root / "train" / model / trainset / algo / variant / f"seed-{seed}"
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "metrics.jsonl", "w") as fh:
        for step in range(1, steps + 1):
            fh.write(json.dumps({"step": step, "reward": 0.2 + slope * step, "reward_std": 0.1,
                                 "step_time": step_time * (1 + 0.01 * (step % 3))}) + "\n")
        fh.write(json.dumps({"train_runtime": 1.0}) + "\n")  # a summary line without reward
    (run / "done.json").write_text(json.dumps({"steps": steps, "wall_time_s": 1.0, "provenance": {}}))
    return RunEntry(model, algo, variant, str(run / "done.json"), variant != "baseline", trainset, seed,
                    DETAILS.get(variant, ""))


def write_heads(root: Path, model: str, n_heads: int = 8, critical: tuple[int, ...] = (3,)) -> HeadsEntry:
    import pandas as pd

    out = root / "heads" / model
    out.mkdir(parents=True, exist_ok=True)
    baseline = 1500.0
    rows = []
    for h in range(n_heads):
        drop = 120.0 if h in critical else 10.0 + h
        rows.append({"head": h, "total": baseline - drop, "perception": baseline - drop - 300,
                     "cognition": 300.0, "drop": drop})
    pd.DataFrame(rows).to_csv(out / "ablation.csv", index=False)
    (out / "critical_heads.json").write_text(json.dumps({
        "heads": list(critical), "threshold": 50.0, "baseline": baseline, "model": model,
        "selected_by": "threshold", "provenance": {}}))
    return HeadsEntry(model, str(out / "ablation.csv"), str(out / "critical_heads.json"))


def write_samples(eval_json: Path, lines: list[dict[str, Any]]) -> Path:
    path = eval_json.with_name(eval_json.name.removesuffix(".json") + ".samples.jsonl")
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def write_rollouts(run, n: int, grid: int = 4) -> None:
    """``n`` rollouts as the trainer writes them: rollout_{i}.json + rollout_{i}.png."""
    gallery = run.gallery_dir
    gallery.mkdir(parents=True, exist_ok=True)
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(gallery / f"rollout_{i}.png")
        labels = (np.arange(grid * grid).reshape(grid, grid) // grid >= grid // 2).astype(int)  # two halves
        key = labels == 1
        selected = key.copy()
        selected[0, 0] = True  # one sampled background token
        selection = {"selected": selected.astype(int).tolist(), "labels": labels.tolist(),
                     "key": key.astype(int).tolist()}
        record = {"step": 30, "prompt": "<image> How many red shapes?", "response": "Red: 2.\n\nThe answer is 2.",
                  "advantage": 0.5, "regions": "sguf", "selections": [selection],
                  "segments": ["Red: 2.", "The answer is 2."], "segment_weights": [0.64, 0.46],
                  "weight_range": [0.1, 1.0], "stats": {}, "images": [f"rollout_{i}.png"]}
        (gallery / f"rollout_{i}.json").write_text(json.dumps(record))


# ---- snakemake dry runs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DryRunJob:
    rule: str
    outputs: tuple[str, ...]
    wildcards: dict[str, str]
    inputs: tuple[str, ...] = ()
    shell: str = ""  # the job's shell command; listed only when the dry run is given -p


def snakemake_dry_run(repo_root: Path, *args: str, timeout: int = 600) -> list[DryRunJob]:
    """The jobs ``snakemake -n ARGS`` would run (parsed from its job listing), offline."""
    import os
    import re
    import subprocess
    import sys

    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--cores", "1", *args],
                          cwd=repo_root, env=env, capture_output=True, text=True, timeout=timeout)
    text = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"snakemake -n {' '.join(args)} failed:\n{text[-4000:]}")
    jobs, current = [], None
    for line in text.splitlines():
        head = re.match(r"^(?:local)?rule (\S+):$", line)
        if head:
            current = {"rule": head.group(1), "outputs": (), "wildcards": {}, "inputs": (), "shell": ""}
            jobs.append(current)
            continue
        if current is None:
            continue
        field = re.match(r"^\s+(input|output|wildcards): (.*)$", line)
        shell = re.match(r"^Shell command: (.*)$", line)
        if field and field.group(1) in ("input", "output"):
            current[field.group(1) + "s"] = tuple(x.strip() for x in field.group(2).split(", "))
        elif field:
            current["wildcards"] = dict(kv.split("=", 1) for kv in field.group(2).split(", "))
        elif shell:
            current["shell"] = shell.group(1)
            current = None
        elif not line.startswith(" "):
            current = None
    return [DryRunJob(j["rule"], j["outputs"], j["wildcards"], j["inputs"], j["shell"]) for j in jobs]
