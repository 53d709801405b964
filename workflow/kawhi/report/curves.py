"""Training curves: mean reward against step, one panel per (model, algorithm), one line per variant."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kawhi.report.output import save_figure
from kawhi.report.manifest import RunEntry
from kawhi.report.results import reward_curve
from kawhi.report.tables import ALGO_LABELS, method_label


def curves_frame(runs: list[RunEntry]) -> pd.DataFrame:
    """Long frame: model, algo, variant, kawhi, step, reward, smoothed (trailing mean over ~10% of steps)."""
    frames = []
    for run in runs:
        curve = reward_curve(run.metrics_path)
        window = max(1, len(curve) // 10)
        curve["smoothed"] = curve.reward.rolling(window, min_periods=1).mean()
        frames.append(curve.assign(model=run.model, algo=run.algo, variant=run.variant, kawhi=run.kawhi))
    return pd.concat(frames, ignore_index=True)


def plot_curves(frame: pd.DataFrame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(frame.model))
    algos = list(dict.fromkeys(frame.algo))
    fig, axes = plt.subplots(len(models), len(algos), figsize=(4.2 * len(algos), 3.2 * len(models)),
                             squeeze=False, sharey=True)
    for r, model in enumerate(models):
        for c, algo in enumerate(algos):
            ax = axes[r][c]
            panel = frame[(frame.model == model) & (frame.algo == algo)]
            for variant, run in panel.groupby("variant", sort=False):
                color = "tab:red" if bool(run.kawhi.iloc[0]) else "tab:blue"
                label = method_label(algo, variant)
                ax.plot(run.step, run.reward, color=color, alpha=0.25, linewidth=0.8)
                ax.plot(run.step, run.smoothed, color=color, linewidth=2, label=label)
            ax.set_title(f"{model} · {ALGO_LABELS.get(algo, algo)}", fontsize=10)
            ax.set_xlabel("step")
            if c == 0:
                ax.set_ylabel("mean reward")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_curves(runs: list[RunEntry], out_png: str | Path, out_pdf: str | Path | None,
                 out_csv: str | Path | None = None) -> pd.DataFrame:
    frame = curves_frame(runs)
    save_figure(plot_curves(frame), [out_png, out_pdf])
    if out_csv is not None:
        from kawhi.atomic import write_text

        write_text(out_csv, frame.to_csv(index=False, float_format="%.6f"))
    return frame
