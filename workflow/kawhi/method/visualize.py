"""One KAWHI rollout as a picture: saliency and critical regions over the image, paragraphs shaded by weight."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from torch import Tensor

from kawhi.atomic import atomic_path

WRAP_CHARS = 70


def _grid(values: Tensor | np.ndarray, name: str) -> np.ndarray:
    """A 2-D numpy grid; a stack of per-image grids [n, h, w] shows its first image."""
    array = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    if array.ndim == 3:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"{name} must be an [h, w] grid, got shape {array.shape}")
    return array


def _printable(text: str) -> str:
    """Model output can hold control characters the font lacks; show them as a middle dot."""
    return "".join(c if c.isprintable() or c == "\n" else "\u00b7" for c in text)


def render_rollout(image: Image.Image, saliency: Tensor, mask: Tensor, segments: list[str],
                   weights: Sequence[float] | Tensor, out_png: Path, title: str = "") -> Path:
    """Left: the image with the saliency heat map and the critical mask M outlined; right: the response,
    each segment on a band coloured by its weight (blue < 1 < red, white = 1). Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    heat = _grid(saliency, "saliency").astype(np.float64)
    region = _grid(mask, "mask").astype(bool)
    if heat.shape != region.shape:
        raise ValueError(f"saliency {heat.shape} and mask {region.shape} grids differ")
    weights = [float(w) for w in (weights.tolist() if isinstance(weights, Tensor) else weights)]
    if len(weights) != len(segments):
        raise ValueError(f"{len(segments)} segments but {len(weights)} weights")
    rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    extent = (0, width, height, 0)  # grid cells stretched over the picture

    lines = [textwrap.wrap(_printable(s.strip()), WRAP_CHARS) or [""] for s in segments]
    n_lines = sum(len(block) + 1 for block in lines)
    fig = plt.figure(figsize=(12, max(4.0, 0.22 * n_lines + 1.0)))
    ax_img = fig.add_axes((0.02, 0.08, 0.38, 0.84))
    ax_txt = fig.add_axes((0.42, 0.02, 0.56, 0.92))
    ax_img.imshow(rgb)
    # min-max scaled: attention over visual tokens is often nearly flat, and the contrast is what matters
    spread = heat.max() - heat.min()
    scaled = (heat - heat.min()) / spread if spread > 0 else np.zeros_like(heat)
    ax_img.imshow(scaled, cmap="inferno", alpha=0.45, extent=extent, interpolation="nearest", vmin=0, vmax=1)
    if region.any():
        # contour at 0.5 of the zero-padded, 8x-upsampled mask: crisp lines along cell borders that
        # close at the image edge
        fine = np.pad(np.kron(region.astype(float), np.ones((8, 8))), 1)
        step_y, step_x = height / (region.shape[0] * 8), width / (region.shape[1] * 8)
        xs = (np.arange(fine.shape[1]) - 0.5) * step_x
        ys = (np.arange(fine.shape[0]) - 0.5) * step_y
        ax_img.contour(xs, ys, fine, levels=[0.5], colors="cyan", linewidths=2)
        ax_img.set_xlim(0, width)
        ax_img.set_ylim(height, 0)
    ax_img.set_title(f"saliency (min-max scaled), critical tokens {int(region.sum())}/{region.size}", fontsize=9)
    ax_img.axis("off")

    low = min(weights + [0.999])
    high = max(weights + [1.001])
    norm = TwoSlopeNorm(vmin=low, vcenter=1.0, vmax=high)
    cmap = plt.get_cmap("coolwarm")
    ax_txt.axis("off")
    ax_txt.set_xlim(0, 1)
    ax_txt.set_ylim(0, n_lines)
    y = n_lines
    for block, w in zip(lines, weights):
        top = y
        y -= len(block)
        ax_txt.add_patch(plt.Rectangle((0, y - 0.3), 1, top - y + 0.1, color=cmap(norm(w)), alpha=0.6, lw=0))
        for i, line in enumerate(block):
            ax_txt.text(0.01, top - i - 0.75, line, fontsize=8, family="monospace", va="baseline", parse_math=False)
        ax_txt.text(0.99, top - 0.75, f"w={w:.2f}", fontsize=8, ha="right", va="baseline", weight="bold")
        y -= 1
    if title:
        fig.suptitle(_printable(title), fontsize=10, parse_math=False)
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out_png
