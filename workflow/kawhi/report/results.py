"""Reading the grid's results for the report: eval JSONs' primary scores, per-sample logs, reward logs.

Which files to read comes from a manifest (kawhi.report.manifest), never from parsing paths.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from kawhi.report.manifest import EvalEntry, ReportInputError


def read_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ReportInputError(f"missing input file: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ReportInputError(f"{path}: not valid JSON ({err})") from err


def primary_score(path: str | Path) -> float:
    """``metrics[primary]`` of an eval JSON, in percent; a clear error if either key is missing."""
    result = read_json(path)
    primary = result.get("primary")
    metrics = result.get("metrics")
    if not isinstance(metrics, dict) or primary not in metrics:
        raise ReportInputError(f"{path}: no metrics[{primary!r}] (metrics keys: "
                               f"{sorted(metrics) if isinstance(metrics, dict) else metrics!r})")
    value = metrics[primary]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ReportInputError(f"{path}: metrics[{primary!r}] = {value!r} is not a finite number")
    return float(value)


def load_scores(entries: Iterable[EvalEntry]) -> pd.DataFrame:
    """One row per entry: model, algo, variant, kawhi, benchmark, score (primary metric, percent)."""
    rows = [{**asdict(e), "score": primary_score(e.path)} for e in entries]
    columns = ["model", "algo", "variant", "kawhi", "benchmark", "path", "score"]
    return pd.DataFrame(rows, columns=columns)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise ReportInputError(f"missing input file: {path}")
    rows = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ReportInputError(f"{path}:{lineno}: not valid JSON ({err})") from err
    return rows


REWARD_KEYS = ("reward", "reward_mean", "rewards/mean")
STEP_KEYS = ("step", "global_step")


def reward_curve(metrics_jsonl: str | Path) -> pd.DataFrame:
    """(step, reward) per logged training step; the reward key is the first of REWARD_KEYS present.

    Lines without a reward (e.g. a final summary line) are skipped; a log with none is an error.
    """
    rows = read_jsonl(metrics_jsonl)
    points = []
    for i, row in enumerate(rows, 1):
        key = next((k for k in REWARD_KEYS if isinstance(row.get(k), (int, float))), None)
        if key is None:
            continue
        step = next((row[k] for k in STEP_KEYS if isinstance(row.get(k), (int, float))), i)
        points.append({"step": int(step), "reward": float(row[key])})
    if not points:
        raise ReportInputError(f"{metrics_jsonl}: no line carries a reward (looked for {REWARD_KEYS})")
    return pd.DataFrame(points).drop_duplicates("step", keep="last").sort_values("step", ignore_index=True)
