"""The warm-start table: each base (warm-started) policy's sampled pass@1 and pass@k per suite.

It shows whether the embedded default sits in the sharpening regime that RLVR works in on real models
(issue 14, docs/data.md "The warm-start regime"): pass@1 between 20 % and 70 % and pass@k at least 20
points above it, so that RL has a behaviour to select. Read from the base models' eval JSONs
(``eval.num_samples`` = k draws at ``eval.temperature``); a result evaluated greedily or with one draw
has no pass@k and is reported as such, never as a pass.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from kawhi.report.output import markdown_table
from kawhi.report.stats import Interval, file_item_scores, stratified_interval

# The regime the issue asks for, in percent.
PASS1_RANGE = (20.0, 70.0)
MIN_GAP = 20.0


def pass1_interval(samples_jsonl: Path) -> Interval:
    """pass@1 in percent with its 95 % interval: the bootstrap over rows of ``kawhi.report.stats``
    (rows as the unit, each row's score its mean over the k draws), as every other table uses."""
    return stratified_interval([file_item_scores(samples_jsonl).to_numpy() * 100.0])


def warmstart_row(result_json: str | Path) -> dict[str, Any]:
    """One (model, suite) row from a base eval JSON and the samples log beside it."""
    path = Path(result_json)
    result = json.loads(path.read_text())
    for key in ("model", "benchmark", "metrics", "primary", "n"):
        if key not in result:
            raise KeyError(f"{path}: eval result lacks '{key}'")
    k = int(result.get("num_samples", 1))
    pass1 = float(result["metrics"][result["primary"]])
    pass_k = float(result["pass_at_k"]["primary"]) if k > 1 and "pass_at_k" in result else math.nan
    samples = path.with_name(path.name.removesuffix(".json") + ".samples.jsonl")
    interval = pass1_interval(samples) if samples.exists() else Interval(math.nan, math.nan, math.nan)
    gap = pass_k - pass1
    in_regime = (k > 1 and PASS1_RANGE[0] <= pass1 <= PASS1_RANGE[1] and gap >= MIN_GAP)
    return {"model": result["model"], "benchmark": result["benchmark"], "n": int(result["n"]), "k": k,
            "temperature": float(result.get("temperature", 0.0)), "pass1": pass1,
            "pass1_low": interval.low, "pass1_high": interval.high,
            "pass_k": pass_k, "gap": gap, "in_regime": bool(in_regime)}


def warmstart_table(results: Sequence[str | Path]):
    """The table (a pandas frame) over the given base eval JSONs, sorted by model and suite."""
    import pandas as pd

    if not results:
        raise ValueError("warm-start table: no eval results given")
    frame = pd.DataFrame([warmstart_row(p) for p in results])
    return frame.sort_values(["model", "benchmark"], kind="stable").reset_index(drop=True)


def _fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def warmstart_markdown(frame) -> str:
    """The Markdown table with a line that says what the regime is and which rows meet it."""
    ks = sorted(set(int(k) for k in frame["k"]))
    k_label = "/".join(str(k) for k in ks)
    header = ["model", "suite", "n", "pass@1 [95 % interval]", f"pass@{k_label}", "gap", "regime"]
    rows = [[r.model, r.benchmark, str(r.n), f"{_fmt(r.pass1)} [{_fmt(r.pass1_low)}, {_fmt(r.pass1_high)}]",
             _fmt(r.pass_k), _fmt(r.gap), "yes" if r.in_regime else ("no pass@k (k = 1)" if r.k == 1 else "no")]
            for r in frame.itertuples()]
    met = int(frame["in_regime"].sum())
    return (f"Warm-start policies, sampled at temperature {', '.join(sorted({_fmt(t) for t in frame['temperature']}))}. "
            f"Regime: pass@1 in [{PASS1_RANGE[0]:.0f}, {PASS1_RANGE[1]:.0f}] % and pass@k at least "
            f"{MIN_GAP:.0f} points above it; {met} of {len(frame)} rows meet it.\n\n"
            + markdown_table(header, rows))


def write_warmstart(results: Sequence[str | Path], out_csv: str | Path, out_md: str | Path) -> Any:
    from kawhi.atomic import write_text

    frame = warmstart_table(results)
    write_text(out_csv, frame.to_csv(index=False, float_format="%.4f"))
    write_text(out_md, warmstart_markdown(frame))
    return frame
