"""Figure 3 panel: the MME score with each head index masked in all layers.

One bar per head index; the unablated baseline ``b`` and the selection line ``b - threshold`` are
drawn across. Bars under the line (drop > threshold) are the vision-critical heads and are coloured (or the
top-k fallback's heads, when none passes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

CRITICAL_COLOR = "#c0392b"
OTHER_COLOR = "#7f8c8d"
PUBLISHED_COLOR = "#1f3a93"


def plot_ablation(ax, ablation: pd.DataFrame, baseline: float, threshold: float, title: str,
                  selected: Sequence[int] | None = None, published: Sequence[int] = ()) -> None:
    """Draw one model's sweep on ``ax``. ``ablation`` has columns ``head`` and ``total`` (ablation.csv).

    ``selected`` (the heads of critical_heads.json) are coloured; by default the heads whose drop
    exceeds ``threshold``. Pass it when the top-k fallback chose them. ``published`` (a paper's list,
    config heads.published) are marked with a triangle above their bars, so the two can be compared.
    """
    for column in ("head", "total"):
        if column not in ablation.columns:
            raise KeyError(f"ablation table has no '{column}' column (has {list(ablation.columns)})")
    heads = ablation["head"].astype(int).tolist()
    totals = ablation["total"].astype(float).tolist()
    if selected is None:
        critical = [baseline - t > threshold for t in totals]
    else:
        critical = [h in set(int(s) for s in selected) for h in heads]
    colors = [CRITICAL_COLOR if c else OTHER_COLOR for c in critical]
    ax.bar(heads, totals, color=colors, width=0.8)
    ax.axhline(baseline, color="black", linewidth=1.2, label=f"baseline b = {baseline:.1f}")
    ax.axhline(baseline - threshold, color=CRITICAL_COLOR, linestyle="--", linewidth=1.0,
               label=f"b - {threshold:g} (threshold)")
    marked = sorted(set(heads) & {int(h) for h in published})
    if marked:
        ax.scatter(marked, [max(totals + [baseline])] * len(marked), marker="v", color=PUBLISHED_COLOR,
                   zorder=3, label=f"published heads {marked}")
    ax.set_xlabel("masked head index (all layers)")
    ax.set_ylabel("MME score")
    ax.set_title(title, fontsize=10)
    ax.set_xticks(heads if len(heads) <= 32 else heads[:: max(1, len(heads) // 16)])
    # Zoom on the interesting band (scores near b and the threshold line), never below 0.
    low, high = min(totals + [baseline - threshold]), max(totals + [baseline])
    margin = 0.1 * max(high - low, abs(baseline) * 0.1, 1.0)
    ax.set_ylim(max(0.0, low - margin), high + margin)
    ax.legend(loc="lower right", fontsize=8)


def save_ablation_figure(ablation: pd.DataFrame, baseline: float, threshold: float, title: str,
                         paths: Sequence[str | Path], selected: Sequence[int] | None = None) -> None:
    """One panel, written atomically to each of ``paths`` (format from the suffix: png, pdf)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kawhi.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(max(5.0, 0.25 * len(ablation) + 2.0), 3.6))
    try:
        plot_ablation(ax, ablation, baseline, threshold, title, selected)
        fig.tight_layout()
        for path in paths:
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=150)
    finally:
        plt.close(fig)
