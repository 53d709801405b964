"""The first model's sweeps: Figure 7 (skip-ratio sensitivity) and the SGUF-against-attention-selector
comparison (the paper's Fig. 4). Each figure has its table (kawhi.report.tables.build_table2: every
row's change against full KAWHI, with its interval); the figures draw every row's score with the 95 %
bootstrap interval of its mean over test items (kawhi.report.stats).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kawhi.report.labels import benchmark_label
from kawhi.report.manifest import EvalEntry, ReportInputError
from kawhi.report.output import save_figure
from kawhi.report.rows import AVG, Row, load_rows
from kawhi.report.stats import stratified_interval

COLORS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown")


def score_intervals(row: Row) -> dict[str, tuple[float, float, float]]:
    """(score, low, high) per benchmark and for the Avg: the printed score and the item bootstrap's interval."""
    strata = {b: r.items.to_numpy() * 100.0 for b, r in row.benches.items()}
    out = {}
    for column, parts in [(b, [s]) for b, s in strata.items()] + [(AVG, list(strata.values()))]:
        interval = stratified_interval(parts)
        out[column] = (row.score(column), interval.low, interval.high)
    return out


def skip_ratio_frame(entries: list[EvalEntry], skip_ratios: dict[str, float]) -> pd.DataFrame:
    """One line per (row, column): variant, skip_ratio (None for rows without KAWHI), column, score, low,
    high, paper, n_seeds."""
    lines = []
    for row in load_rows(entries):
        if row.kawhi and row.variant not in skip_ratios:
            raise ReportInputError(f"Figure 7: no skip ratio given for variant '{row.variant}'")
        for column, (score, low, high) in score_intervals(row).items():
            lines.append({"method": row.label, "variant": row.variant, "kawhi": row.kawhi,
                          "skip_ratio": skip_ratios.get(row.variant) if row.kawhi else None, "column": column,
                          "score": score, "low": low, "high": high, "paper": row.published_score(column),
                          "n_seeds": len(row.seeds)})
    return pd.DataFrame(lines)


def plot_skip_ratio(frame: pd.DataFrame, model: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for column, color in zip(dict.fromkeys(frame.column), COLORS):
        swept = frame[(frame.column == column) & frame.kawhi].sort_values("skip_ratio")
        if swept.empty:
            continue
        errors = [swept.score - swept.low, swept.high - swept.score]
        label = benchmark_label(column)
        ax.errorbar(swept.skip_ratio, swept.score, yerr=errors, color=color, marker="o", capsize=3, label=label)
        for _, plain in frame[(frame.column == column) & ~frame.kawhi].iterrows():
            ax.axhline(plain.score, color=color, linestyle=":", linewidth=1)
    ax.set_xticks(sorted(frame.skip_ratio.dropna().unique()))
    ax.set_xlabel("SGUF skip ratio (share of each background component left out)")
    ax.set_ylabel("score (%), 95 % interval")
    ax.set_title(f"Skip-ratio sensitivity, {model} (dotted: without KAWHI)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_figure7(entries: list[EvalEntry], skip_ratios: dict[str, float], out_png: str | Path,
                  out_pdf: str | Path | None) -> pd.DataFrame:
    frame = skip_ratio_frame(entries, skip_ratios)
    save_figure(plot_skip_ratio(frame, entries[0].model), [out_png, out_pdf])
    return frame


def plot_rows(rows: list[Row], title: str):
    """Grouped bars: one group per benchmark (and the Avg), one bar per row with its interval; the paper's
    values, where it has them, as black diamonds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = list(rows[0].benches) + [AVG]
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(columns) + 2), 3.8))
    x = np.arange(len(columns))
    for i, (row, color) in enumerate(zip(rows, COLORS)):
        cells = score_intervals(row)
        scores = np.array([cells[c][0] for c in columns])
        errors = [scores - [cells[c][1] for c in columns], [cells[c][2] for c in columns] - scores]
        offset = (i - (len(rows) - 1) / 2) * width
        ax.bar(x + offset, scores, width=width * 0.95, color=color, yerr=errors, capsize=2,
               label=f"{row.label} ({len(row.seeds)} seed{'s' * (len(row.seeds) != 1)})")
        paper = [row.published_score(c) for c in columns]
        shown = [j for j, p in enumerate(paper) if p is not None]
        if shown:
            labelled = "paper" in ax.get_legend_handles_labels()[1]
            ax.scatter(x[shown] + offset, [paper[j] for j in shown], marker="D", color="black", zorder=3,
                       s=14, label=None if labelled else "paper")
    ax.set_xticks(x)
    ax.set_xticklabels([benchmark_label(c) for c in columns], fontsize=8)
    ax.set_ylabel("score (%), 95 % interval")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_selector(entries: list[EvalEntry], out_png: str | Path, out_pdf: str | Path | None) -> list[Row]:
    rows = load_rows(entries)
    save_figure(plot_rows(rows, f"Token selector: SGUF against attention, {entries[0].model}"), [out_png, out_pdf])
    return rows
