"""Figure 5: training time per step with and without KAWHI, from the runs' logged ``step_time``.

TRL logs ``step_time`` (seconds of one optimiser step, generation included) at every logging step; the
trainer's callback copies it into metrics.jsonl. Per (model, training data, algorithm) the steps of
every seed are pooled on each side, the first step of each run left out (it pays for warm-up). Each
bar is the mean with its 95 % bootstrap interval; the ratio KAWHI / without KAWHI carries its
interval (kawhi.report.stats.ratio_interval). The paper's times, where it gives them, are drawn beside.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kawhi.atomic import write_text
from kawhi.report.labels import ALGO_LABELS
from kawhi.report.manifest import ReportInputError, RunEntry
from kawhi.report.output import save_figure
from kawhi.report.results import read_jsonl
from kawhi.report.stats import ratio_interval, stratified_interval

STEP_TIME_KEY = "step_time"


def step_times(run: RunEntry) -> np.ndarray:
    """The run's per-step times in seconds, its first step left out when it has three or more."""
    times = [float(line[STEP_TIME_KEY]) for line in read_jsonl(run.metrics_path)
             if isinstance(line.get(STEP_TIME_KEY), (int, float))]
    if not times:
        raise ReportInputError(f"{run.metrics_path}: no line carries '{STEP_TIME_KEY}'")
    return np.asarray(times[1:] if len(times) >= 3 else times)


def efficiency_frame(runs: list[RunEntry]) -> pd.DataFrame:
    """One line per (model, trainset, algo) with runs on both sides: mean step time without and with
    KAWHI (and their intervals), the ratio with its interval, the steps and seeds behind them."""
    lines = []
    for model, trainset, algo in dict.fromkeys((r.model, r.trainset, r.algo) for r in runs):
        mine = [r for r in runs if (r.model, r.trainset, r.algo) == (model, trainset, algo)]
        sides = {kawhi: [r for r in mine if r.kawhi == kawhi] for kawhi in (False, True)}
        if not sides[False] or not sides[True]:
            continue
        times = {kawhi: np.concatenate([step_times(r) for r in side]) for kawhi, side in sides.items()}
        line = {"model": model, "trainset": trainset, "algo": algo}
        for kawhi, name in ((False, "base"), (True, "kawhi")):
            mean = stratified_interval([times[kawhi]])
            published = [r.published for r in sides[kawhi] if r.published is not None]
            line.update({f"{name}_s": mean.estimate, f"{name}_low": mean.low, f"{name}_high": mean.high,
                         f"{name}_steps": len(times[kawhi]), f"{name}_seeds": len(sides[kawhi]),
                         f"{name}_paper_s": published[0] if published else None})
        ratio = ratio_interval(times[True], times[False])
        line.update({"ratio": ratio.estimate, "ratio_low": ratio.low, "ratio_high": ratio.high})
        line["paper_ratio"] = (line["kawhi_paper_s"] / line["base_paper_s"]
                               if line["kawhi_paper_s"] and line["base_paper_s"] else None)
        lines.append(line)
    if not lines:
        raise ReportInputError("Figure 5: no (model, algorithm) has runs both with and without KAWHI")
    return pd.DataFrame(lines)


def plot_efficiency(frame: pd.DataFrame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(frame) + 2), 3.8))
    x = np.arange(len(frame))
    for offset, name, color, label in ((-0.2, "base", "tab:blue", "without KAWHI"),
                                       (0.2, "kawhi", "tab:red", "with KAWHI")):
        means = frame[f"{name}_s"].to_numpy()
        errors = [means - frame[f"{name}_low"].to_numpy(), frame[f"{name}_high"].to_numpy() - means]
        ax.bar(x + offset, means, width=0.38, color=color, yerr=errors, capsize=3, label=label)
        paper = frame[f"{name}_paper_s"]
        if paper.notna().any():
            ax.scatter(x[paper.notna()] + offset, paper[paper.notna()], marker="D", color="black", zorder=3,
                       label="paper" if name == "base" else None)
    for i, line in frame.iterrows():
        text = f"x{line.ratio:.3f}\n[{line.ratio_low:.3f}, {line.ratio_high:.3f}]"
        if line.paper_ratio:
            text += f"\npaper x{line.paper_ratio:.3f}"
        top = max(line.base_high, line.kawhi_high, line.base_paper_s or 0, line.kawhi_paper_s or 0)
        ax.annotate(text, (i, top), ha="center", va="bottom", fontsize=7, textcoords="offset points",
                    xytext=(0, 3))
    ax.set_xticks(x)
    ax.set_xticklabels([f"{m}\n{ALGO_LABELS.get(a, a)}" + (f" · {t}" if t else "")
                        for m, t, a in zip(frame.model, frame.trainset, frame.algo)], fontsize=8)
    ax.set_ylabel("seconds per training step")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.25)
    ax.set_title("Training time per step (95 % intervals; ratio with KAWHI / without)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def write_efficiency(runs: list[RunEntry], out_png: str | Path, out_pdf: str | Path | None,
                     out_csv: str | Path) -> pd.DataFrame:
    frame = efficiency_frame(runs)
    save_figure(plot_efficiency(frame), [out_png, out_pdf])
    write_text(out_csv, frame.to_csv(index=False, float_format="%.6f"))
    return frame
