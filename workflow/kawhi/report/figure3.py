"""Figure 3: the global head-ablation sweep, one panel per model (the heads stage draws each panel)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kawhi.report.output import save_figure
from kawhi.report.manifest import ReportInputError
from kawhi.report.results import read_json

ABLATION_COLUMNS = ("head", "total", "drop")


@dataclass(frozen=True)
class HeadsResult:
    model: str
    ablation: pd.DataFrame
    baseline: float
    threshold: float
    heads: list[int]
    selected_by: str
    published: tuple[int, ...] = ()
    source: str = "sweep"  # which heads training uses: the sweep's or the published ones


def load_heads_result(model: str, ablation_csv: str | Path, heads_json: str | Path,
                      published: tuple[int, ...] = (), source: str = "sweep") -> HeadsResult:
    if not Path(ablation_csv).exists():
        raise ReportInputError(f"missing input file: {ablation_csv}")
    ablation = pd.read_csv(ablation_csv)
    missing = [c for c in ABLATION_COLUMNS if c not in ablation.columns]
    if missing:
        raise ReportInputError(f"{ablation_csv}: missing columns {missing} (has {list(ablation.columns)})")
    info = read_json(heads_json)
    for key in ("heads", "threshold", "baseline"):
        if key not in info:
            raise ReportInputError(f"{heads_json}: no '{key}'")
    return HeadsResult(model=model, ablation=ablation, baseline=float(info["baseline"]),
                       threshold=float(info["threshold"]), heads=[int(h) for h in info["heads"]],
                       selected_by=str(info.get("selected_by", "threshold")), published=tuple(published),
                       source=source)


def plot_figure3(results: list[HeadsResult]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kawhi.ablation_figure import plot_ablation  # one look for the heads stage and the report

    cols = min(2, len(results))
    rows = math.ceil(len(results) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.0 * cols, 3.6 * rows), squeeze=False)
    for ax, result in zip(axes.flat, results):
        how = "" if result.selected_by == "threshold" else f", top-{len(result.heads)} fallback"
        title = f"{result.model}: critical heads {result.heads}{how}"
        if result.published:
            title += f"\npublished {list(result.published)}; training uses the {result.source} heads"
        plot_ablation(ax, result.ablation, result.baseline, result.threshold, title, selected=result.heads,
                      published=result.published)
    for ax in list(axes.flat)[len(results):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def write_figure3(results: list[HeadsResult], out_png: str | Path, out_pdf: str | Path | None) -> None:
    if not results:
        raise ReportInputError("Figure 3: no model given")
    save_figure(plot_figure3(results), [out_png, out_pdf])
