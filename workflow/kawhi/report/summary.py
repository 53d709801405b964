"""Performance summary: how much KAWHI adds to its base algorithm, averaged over the grid's results.

Every KAWHI result (model, algorithm, benchmark) is paired with the same model, algorithm and
benchmark trained without KAWHI. The summary reports the mean absolute gain (percentage points), the
mean relative gain (percent of the base algorithm's score), how often KAWHI wins, the same broken down
per algorithm, model and benchmark, and the counts of benchmarks, models and frameworks compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from kawhi.atomic import write_json, write_text
from kawhi.provenance import provenance
from kawhi.report.output import markdown_table
from kawhi.report.manifest import BASE_ROW, EvalEntry, ReportInputError, manifest_json
from kawhi.report.results import load_scores
from kawhi.report.tables import ALGO_LABELS, benchmark_label


def kawhi_pairs(entries: list[EvalEntry]) -> pd.DataFrame:
    """One row per KAWHI result with its base-algorithm counterpart: model, algo, variant, benchmark,
    base_score, kawhi_score, gain (points), relative_gain (percent of base_score)."""
    scores = load_scores([e for e in entries if e.algo != BASE_ROW])
    plain = scores[~scores.kawhi.astype(bool)]
    with_kawhi = scores[scores.kawhi.astype(bool)]
    keys = ["model", "algo", "benchmark"]
    if plain.duplicated(keys).any():
        raise ReportInputError("summary: several non-KAWHI results for one (model, algo, benchmark): "
                               f"{plain[plain.duplicated(keys, keep=False)].path.tolist()}")
    pairs = with_kawhi.merge(plain[keys + ["score"]], on=keys, suffixes=("", "_base"), how="inner")
    pairs = pairs.rename(columns={"score": "kawhi_score", "score_base": "base_score"})
    pairs["gain"] = pairs.kawhi_score - pairs.base_score
    pairs["relative_gain"] = pairs.gain / pairs.base_score.where(pairs.base_score != 0) * 100
    return pairs[["model", "algo", "variant", "benchmark", "base_score", "kawhi_score", "gain",
                  "relative_gain"]]


def _group(pairs: pd.DataFrame, by: str) -> dict[str, dict[str, float]]:
    out = {}
    for key, group in pairs.groupby(by, sort=False):
        out[str(key)] = {"mean_gain": float(group.gain.mean()),
                         "mean_relative_gain": float(group.relative_gain.mean()),
                         "wins": int((group.gain > 0).sum()), "n": int(len(group))}
    return out


def build_summary(entries: list[EvalEntry]) -> dict[str, Any]:
    pairs = kawhi_pairs(entries)
    if pairs.empty:
        raise ReportInputError("summary: no KAWHI result has a base-algorithm counterpart in the manifest")
    return {
        "mean_gain": float(pairs.gain.mean()),
        "mean_relative_gain": float(pairs.relative_gain.mean()),
        "median_gain": float(pairs.gain.median()),
        "wins": int((pairs.gain > 0).sum()),
        "ties": int((pairs.gain == 0).sum()),
        "losses": int((pairs.gain < 0).sum()),
        "n_comparisons": int(len(pairs)),
        "n_benchmarks": int(pairs.benchmark.nunique()),
        "n_models": int(pairs.model.nunique()),
        "n_frameworks": int(pairs.algo.nunique()),
        "benchmarks": list(dict.fromkeys(pairs.benchmark)),
        "models": list(dict.fromkeys(pairs.model)),
        "frameworks": list(dict.fromkeys(pairs.algo)),
        "by_framework": _group(pairs, "algo"),
        "by_model": _group(pairs, "model"),
        "by_benchmark": _group(pairs, "benchmark"),
        "pairs": pairs.to_dict(orient="records"),
    }


def summary_markdown(summary: dict[str, Any]) -> str:
    s = summary
    lines = [
        "# Performance summary",
        "",
        f"KAWHI changes its base algorithm's score by **{s['mean_gain']:+.2f} points** on average "
        f"({s['mean_relative_gain']:+.2f}% relative), winning {s['wins']} of {s['n_comparisons']} "
        f"comparisons, across **{s['n_benchmarks']} benchmarks**, **{s['n_models']} models** and "
        f"**{s['n_frameworks']} RL frameworks** ({', '.join(ALGO_LABELS.get(a, a) for a in s['frameworks'])}).",
        "",
    ]
    for title, key, label in (("By framework", "by_framework", lambda a: ALGO_LABELS.get(a, a)),
                              ("By model", "by_model", str), ("By benchmark", "by_benchmark", benchmark_label)):
        rows = [[label(name), f"{g['mean_gain']:+.2f}", f"{g['mean_relative_gain']:+.2f}%",
                 f"{g['wins']}/{g['n']}"] for name, g in s[key].items()]
        lines += [f"## {title}", "", markdown_table([title.split()[1].capitalize(), "mean gain (pts)",
                                                     "relative", "wins"], rows)]
    return "\n".join(lines)


def write_summary(entries: list[EvalEntry], out_json: str | Path, out_md: str | Path) -> dict[str, Any]:
    summary = build_summary(entries)
    summary["provenance"] = provenance({"manifest": manifest_json(entries)})
    write_json(out_json, summary)
    write_text(out_md, summary_markdown(summary))
    return summary
