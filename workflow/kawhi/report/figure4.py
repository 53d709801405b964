"""Figure 4: radar of the base model, GRPO and GRPO+KAWHI trained on chart data, on the chart benchmarks
(scores: mean over seeds). The table beside it (kawhi.report.tables.build_table1) gives each change
with its interval."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from kawhi.report.labels import benchmark_label
from kawhi.report.manifest import EvalEntry, ReportInputError
from kawhi.report.output import save_figure
from kawhi.report.rows import load_rows


def radar_frame(entries: list[EvalEntry]) -> pd.DataFrame:
    """benchmark x method scores (percent, mean over seeds), benchmarks and methods in manifest order."""
    if not entries:
        raise ReportInputError("Figure 4: the manifest names no eval results")
    models = list(dict.fromkeys(e.model for e in entries))
    if len(models) != 1:
        raise ReportInputError(f"Figure 4 draws one model; the manifest has {models}")
    rows = load_rows(entries)
    benchmarks = list(rows[0].benches)
    return pd.DataFrame({row.label: [row.score(b) for b in benchmarks] for row in rows}, index=benchmarks)


def plot_radar(wide: pd.DataFrame, title: str):
    """A matplotlib figure with one polygon per method (column) over the benchmarks (rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [benchmark_label(b) for b in wide.index]
    n = len(labels)
    angles = [2 * math.pi * i / n for i in range(n)]
    fig, ax = plt.subplots(figsize=(5.5, 5.5), subplot_kw={"projection": "polar"})
    top = max(10.0, float(wide.values.max()) * 1.1)
    offsets = ((-26, -10), (4, 4), (4, -12), (-26, 6))  # keep the value labels of the polygons apart
    for method, color, offset in zip(wide.columns, ("tab:gray", "tab:blue", "tab:red", "tab:purple"), offsets):
        values = [float(v) for v in wide[method]]
        ax.plot(angles + angles[:1], values + values[:1], color=color, linewidth=2, label=method)
        ax.fill(angles + angles[:1], values + values[:1], color=color, alpha=0.12)
        for angle, value in zip(angles, values):
            ax.annotate(f"{value:.1f}", (angle, value), color=color, fontsize=7,
                        textcoords="offset points", xytext=offset)
    ax.set_xticks(angles)
    ax.set_xticklabels(labels, fontsize=9)
    ax.set_ylim(0, top)
    ax.set_title(title, pad=18)
    ax.legend(loc="upper right", bbox_to_anchor=(1.25, 1.12), fontsize=8)
    return fig


def write_figure4(entries: list[EvalEntry], out_png: str | Path, out_pdf: str | Path | None) -> pd.DataFrame:
    wide = radar_frame(entries)
    model = entries[0].model
    fig = plot_radar(wide, f"Chart benchmarks, {model} (trained on charts)")
    save_figure(fig, [out_png, out_pdf])
    return wide
