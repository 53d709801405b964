"""Training curves: mean reward against step, one panel per (model, training data, algorithm), one line per
variant: the mean over the run's seeds, with a band from the lowest to the highest seed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kawhi.report.labels import ALGO_LABELS, method_label
from kawhi.report.manifest import RunEntry
from kawhi.report.output import save_figure
from kawhi.report.results import reward_curve

ROW = ["model", "trainset", "algo", "variant"]


def curves_frame(runs: list[RunEntry]) -> pd.DataFrame:
    """Long frame, one line per run (seed) and step: model, trainset, algo, variant, kawhi, detail, seed,
    step, reward, smoothed (trailing mean over ~10% of the steps)."""
    frames = []
    for run in runs:
        curve = reward_curve(run.metrics_path)
        window = max(1, len(curve) // 10)
        curve["smoothed"] = curve.reward.rolling(window, min_periods=1).mean()
        frames.append(curve.assign(model=run.model, trainset=run.trainset, algo=run.algo, variant=run.variant,
                                   kawhi=run.kawhi, detail=run.detail, seed=run.seed))
    return pd.concat(frames, ignore_index=True)


def seed_bands(frame: pd.DataFrame) -> pd.DataFrame:
    """Per row and step: the mean of the seeds' smoothed rewards, their min and max, and how many seeds."""
    grouped = frame.groupby(ROW + ["step"], sort=False).smoothed
    return grouped.agg(mean="mean", low="min", high="max", n_seeds="count").reset_index()


def plot_curves(frame: pd.DataFrame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bands = seed_bands(frame)
    panels = list(dict.fromkeys(zip(frame.model, frame.trainset, frame.algo)))
    models = list(dict.fromkeys(p[0] for p in panels))
    per_model = max(sum(p[0] == m for p in panels) for m in models)
    fig, axes = plt.subplots(len(models), per_model, figsize=(4.2 * per_model, 3.2 * len(models)),
                             squeeze=False, sharey=True)
    for ax in axes.flat:
        ax.set_visible(False)
    for model in models:
        for c, (_, trainset, algo) in enumerate(p for p in panels if p[0] == model):
            ax = axes[models.index(model)][c]
            ax.set_visible(True)
            mine = (frame.model == model) & (frame.trainset == trainset) & (frame.algo == algo)
            for variant, runs in frame[mine].groupby("variant", sort=False):
                band = bands[(bands.model == model) & (bands.trainset == trainset) & (bands.algo == algo)
                             & (bands.variant == variant)]
                kawhi = bool(runs.kawhi.iloc[0])
                color = "tab:red" if kawhi else "tab:blue"
                n_seeds = runs.seed.nunique(dropna=False)
                label = f"{method_label(algo, kawhi, runs.detail.iloc[0])} ({n_seeds} seed{'s' * (n_seeds != 1)})"
                ax.fill_between(band.step, band.low, band.high, color=color, alpha=0.2, linewidth=0)
                ax.plot(band.step, band["mean"], color=color, linewidth=2, label=label)
            data = f" · {trainset}" if trainset else ""
            ax.set_title(f"{model}{data} · {ALGO_LABELS.get(algo, algo)}", fontsize=10)
            ax.set_xlabel("step")
            if c == 0:
                ax.set_ylabel("mean reward (band: seeds' range)")
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
