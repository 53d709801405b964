"""KAWHI gallery: a few training rollouts drawn by the method core's renderer, composed into one figure.

The trainer leaves rollouts in ``run_dir/gallery/`` (kawhi.train.gallery): per rollout a JSON (prompt,
response, per image the selected-token grid and SGUF's ``labels``/``key`` grids under ``selections``,
segment texts, ``segment_weights``, ``weight_range``, the image file names under ``images``) and the
image(s) as PNG. Each is re-rendered (first image) with ``kawhi.method.visualize.render_rollout`` (SGUF's
components, key regions and sampled background over the image, paragraphs shaded by weight, like the
paper's Fig. 6), then the renderings are tiled into gallery.png/.pdf.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from kawhi.report.manifest import ReportInputError, RunEntry
from kawhi.report.output import save_figure

WEIGHT_KEYS = ("segment_weights", "weights")


def rollout_files(run: RunEntry) -> list[Path]:
    files = sorted(run.gallery_dir.glob("*.json"))
    if not files:
        raise ReportInputError(f"{run.gallery_dir}: no rollout JSONs (did the training run write its gallery?)")
    return files


def spread(items: list, n: int) -> list:
    """``n`` items evenly spread over ``items`` (early, middle and late training rollouts), in order."""
    if n >= len(items):
        return list(items)
    idx = sorted({round(i * (len(items) - 1) / max(1, n - 1)) for i in range(n)})
    return [items[i] for i in idx]


def load_rollout(path: Path) -> dict[str, Any]:
    try:
        rollout = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ReportInputError(f"{path}: not valid JSON ({err})") from err
    missing = [k for k in ("selections", "segments") if k not in rollout]
    if not any(k in rollout for k in WEIGHT_KEYS):
        missing.append(" or ".join(WEIGHT_KEYS))
    if missing:
        raise ReportInputError(f"{path}: missing {missing}")
    return rollout


def rollout_image(path: Path, rollout: dict[str, Any]):
    from PIL import Image

    names = rollout.get("images") or []
    candidates = ([path.parent / names[0]] if names else []) + [path.with_suffix(".png")]
    for candidate in candidates:
        if candidate.exists():
            return Image.open(candidate).convert("RGB")
    raise ReportInputError(f"{path}: no image found (tried {[str(c) for c in candidates]})")


def rollout_title(run: RunEntry, path: Path) -> str:
    from kawhi.report.labels import method_label

    rollout = load_rollout(path)
    parts = [f"{run.model} · {method_label(run.algo, run.kawhi, run.detail)}", path.stem]
    if "step" in rollout:
        parts.append(f"step {rollout['step']}")
    if isinstance(rollout.get("advantage"), (int, float)):
        parts.append(f"advantage {rollout['advantage']:+.2f}")
    return ", ".join(parts)


def render(path: Path, out_png: Path, title: str) -> Path:
    """One rollout through the method core's renderer (its first image)."""
    from kawhi.method.visualize import render_rollout

    rollout = load_rollout(path)
    if not rollout["selections"]:
        raise ReportInputError(f"{path}: the rollout has no image selection to draw")
    first = rollout["selections"][0]
    weights = next(rollout[k] for k in WEIGHT_KEYS if k in rollout)
    render_rollout(rollout_image(path, rollout), first["selected"], list(rollout["segments"]), weights, out_png,
                   title, labels=first.get("labels"), key=first.get("key"),
                   weight_range=tuple(rollout.get("weight_range", (min(weights), max(weights)))))
    return out_png


def write_gallery_figure(runs: list[RunEntry], n: int, out_png: str | Path, out_pdf: str | Path | None,
                  out_dir: str | Path | None = None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    chosen = [(run, f) for run in runs for f in rollout_files(run)]
    chosen = spread(chosen, n)
    with tempfile.TemporaryDirectory() as tmp:
        keep = Path(out_dir) if out_dir else Path(tmp)
        keep.mkdir(parents=True, exist_ok=True)
        rendered = [render(f, keep / f"{run.model}-{run.algo}-{run.variant}-{f.stem}.png", rollout_title(run, f))
                    for run, f in chosen]
        images = []
        for png in rendered:
            with Image.open(png) as im:
                images.append(np.asarray(im.convert("RGB")))
        # one rendering per row, each at its own aspect ratio (they are wide: image + response)
        heights = [im.shape[0] / im.shape[1] for im in images]
        fig, axes = plt.subplots(len(images), 1, figsize=(12, 12 * sum(heights)), squeeze=False,
                                 gridspec_kw={"height_ratios": heights})
        for ax, im in zip(axes[:, 0], images):
            ax.imshow(im)
            ax.axis("off")
        fig.subplots_adjust(left=0, right=1, top=1, bottom=0, hspace=0.02)
        save_figure(fig, [out_png, out_pdf])
    return rendered if out_dir else []
