"""Performance summary: what KAWHI adds to its base algorithm, and what RL adds to the base model, with
their 95 % intervals; and the headline of the report's landing page.

Every KAWHI row (model, training set, algorithm) is compared with the same model, training set and
algorithm trained without KAWHI, per benchmark and on the benchmarks' average, by
kawhi.report.rows.compare (a paired bootstrap over test items, pooled over seeds). A comparison is a
significant gain when its interval lies above 0, a significant loss when below, and "not significant"
otherwise; the summary counts those three, never raw wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kawhi.atomic import write_json, write_text
from kawhi.provenance import provenance
from kawhi.report.labels import ALGO_LABELS, benchmark_label
from kawhi.report.manifest import BASE_ROW, EvalEntry, ReportInputError, manifest_json
from kawhi.report.output import markdown_table
from kawhi.report.rows import AVG, Row, compare, load_rows
from kawhi.report.stats import Interval

GAIN, LOSS, NOT_SIGNIFICANT = "significant gain", "significant loss", "not significant"
TRAINSET_LABELS = {"math": "math", "chart": "charts"}


def verdict(interval: Interval) -> str:
    if interval.low > 0:
        return GAIN
    if interval.high < 0:
        return LOSS
    return NOT_SIGNIFICANT


def row_groups(entries: list[EvalEntry]) -> list[list[Row]]:
    """The rows of each training set (math grid, chart experiment), with the base model's rows on the
    same benchmarks: each group is one table's worth of rows."""
    trained = [e for e in entries if e.algo != BASE_ROW]
    groups = []
    for trainset in dict.fromkeys(e.trainset for e in trained):
        mine = [e for e in trained if e.trainset == trainset]
        benches = {e.benchmark for e in mine}
        groups.append(load_rows([e for e in entries if e.algo == BASE_ROW and e.benchmark in benches] + mine))
    return groups


def _interval_record(interval: Interval) -> dict[str, Any]:
    return {"delta": interval.estimate, "low": interval.low, "high": interval.high, "verdict": verdict(interval)}


def comparisons(groups: list[list[Row]]) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """(one line per KAWHI row and benchmark against its own algorithm; the Avg comparisons of every run:
    KAWHI against its algorithm and every run against the base model)."""
    pairs, averages = [], []
    for rows in groups:
        for row in (r for r in rows if r.kawhi):
            own = [r for r in rows if not r.is_base and not r.kawhi and r.model == row.model and r.algo == row.algo]
            if len(own) > 1:
                raise ReportInputError(f"summary: several non-KAWHI rows for {row.model}/{row.algo}: "
                                       f"{[r.variant for r in own]}")
            if not own:
                continue
            changes = compare(row, own[0])
            for bench in row.benches:
                base_score = own[0].score(bench)
                pairs.append({"model": row.model, "trainset": row.trainset, "algo": row.algo, "variant": row.variant,
                              "benchmark": bench, "base_score": base_score, "kawhi_score": row.score(bench),
                              "gain": changes[bench].estimate, "low": changes[bench].low,
                              "high": changes[bench].high, "verdict": verdict(changes[bench]),
                              "relative_gain": changes[bench].estimate / base_score * 100 if base_score else np.nan,
                              "n_seeds": len(row.seeds), "n_seeds_base": len(own[0].seeds)})
            averages.append({"model": row.model, "trainset": row.trainset, "row": row.label,
                             "against": own[0].label, **_interval_record(changes[AVG])})
        bases = {r.model: r for r in rows if r.is_base}
        for row in (r for r in rows if not r.is_base and r.model in bases):
            averages.append({"model": row.model, "trainset": row.trainset, "row": row.label,
                             "against": bases[row.model].label, **_interval_record(compare(row, bases[row.model])[AVG])})
    return pd.DataFrame(pairs), averages


def _group(pairs: pd.DataFrame, by: str) -> dict[str, dict[str, Any]]:
    out = {}
    for key, group in pairs.groupby(by, sort=False):
        out[str(key)] = {"mean_gain": float(group.gain.mean()),
                         "mean_relative_gain": float(group.relative_gain.mean()),
                         "significant_gains": int((group.verdict == GAIN).sum()),
                         "significant_losses": int((group.verdict == LOSS).sum()), "n": int(len(group))}
    return out


def build_summary(entries: list[EvalEntry]) -> dict[str, Any]:
    pairs, averages = comparisons(row_groups(entries))
    if pairs.empty:
        raise ReportInputError("summary: no KAWHI result has a base-algorithm counterpart in the manifest")
    return {
        "mean_gain": float(pairs.gain.mean()),
        "mean_relative_gain": float(pairs.relative_gain.mean()),
        "median_gain": float(pairs.gain.median()),
        "significant_gains": int((pairs.verdict == GAIN).sum()),
        "significant_losses": int((pairs.verdict == LOSS).sum()),
        "not_significant": int((pairs.verdict == NOT_SIGNIFICANT).sum()),
        "n_comparisons": int(len(pairs)),
        "n_benchmarks": int(pairs.benchmark.nunique()),
        "n_models": int(pairs.model.nunique()),
        "n_frameworks": int(pairs.algo.nunique()),
        "seeds": sorted({int(n) for n in pairs.n_seeds}),
        "benchmarks": list(dict.fromkeys(pairs.benchmark)),
        "models": list(dict.fromkeys(pairs.model)),
        "frameworks": list(dict.fromkeys(pairs.algo)),
        "by_framework": _group(pairs, "algo"),
        "by_model": _group(pairs, "model"),
        "by_benchmark": _group(pairs, "benchmark"),
        "averages": averages,
        "pairs": pairs.to_dict(orient="records"),
    }


def _interval_text(a: dict[str, Any]) -> str:
    return f"{a['delta']:+.2f} points [{a['low']:+.2f}, {a['high']:+.2f}], {a['verdict']}"


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def counts_sentence(s: dict[str, Any]) -> str:
    seeds = " or ".join(str(n) for n in s["seeds"])
    gains = _count(s["significant_gains"], "significant gain")
    losses = _count(s["significant_losses"], "significant loss", "significant losses")
    return (f"KAWHI against its own algorithm, per benchmark: **{gains}**, **{losses}** and "
            f"**{s['not_significant']} not significant** "
            f"of {s['n_comparisons']} comparisons ({s['n_models']} models, {s['n_frameworks']} RL frameworks: "
            f"{', '.join(ALGO_LABELS.get(a, a) for a in s['frameworks'])}; {s['n_benchmarks']} benchmarks; "
            f"{seeds} seeds per run; 95 % paired bootstrap over test items).")


def summary_markdown(summary: dict[str, Any]) -> str:
    s = summary
    lines = ["# Performance summary", "", counts_sentence(s), "",
             f"Mean change over those comparisons: {s['mean_gain']:+.2f} points "
             f"({s['mean_relative_gain']:+.2f}% relative); a mean, not a test: read the counts above.", "",
             "## Benchmark averages", "",
             markdown_table(["Model", "Training data", "Row", "Against", "Change (95 % interval)"],
                            [[a["model"], TRAINSET_LABELS.get(a["trainset"], a["trainset"]), a["row"], a["against"],
                              _interval_text(a)] for a in s["averages"]])]
    for title, key, label in (("By framework", "by_framework", lambda a: ALGO_LABELS.get(a, a)),
                              ("By model", "by_model", str), ("By benchmark", "by_benchmark", benchmark_label)):
        rows = [[label(name), f"{g['mean_gain']:+.2f}", f"{g['mean_relative_gain']:+.2f}%",
                 str(g["significant_gains"]), str(g["significant_losses"]),
                 str(g["n"] - g["significant_gains"] - g["significant_losses"])] for name, g in s[key].items()]
        lines += [f"## {title}", "", markdown_table([title.split()[1].capitalize(), "mean change (pts)", "relative",
                                                     "significant gains", "significant losses", "not significant"],
                                                    rows)]
    return "\n".join(lines)


def headline_rst(summary: dict[str, Any]) -> str:
    """The landing page's results (reStructuredText, included by report/workflow.rst)."""
    lines = ["Headline results", "----------------", "", counts_sentence(summary), ""]
    for a in summary["averages"]:
        lines.append(f"- {a['model']}, {TRAINSET_LABELS.get(a['trainset'], a['trainset'])} benchmarks' average: "
                     f"{a['row']} against {a['against']}: {_interval_text(a)}")
    return "\n".join(lines) + "\n"


def write_summary(entries: list[EvalEntry], out_json: str | Path, out_md: str | Path,
                  out_rst: str | Path | None = None) -> dict[str, Any]:
    summary = build_summary(entries)
    summary["provenance"] = provenance({"manifest": manifest_json(entries)})
    write_json(out_json, summary)
    write_text(out_md, summary_markdown(summary))
    if out_rst is not None:
        write_text(out_rst, headline_rst(summary))
    return summary
