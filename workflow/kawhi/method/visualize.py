"""One KAWHI rollout as a picture, like the paper's Fig. 6: SGUF over the image, paragraphs shaded by weight.

Left: the image with SGUF's components (thin boundaries), its key regions (filled, outlined) and the
sampled background tokens (dots) on the visual-token grid; without SGUF (``regions: all`` or
``attention``) only the selected tokens are filled. Right: the response, each paragraph on a band whose
shade grows with its weight over [w_min, w_max].
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from kawhi.atomic import atomic_path

WRAP_CHARS = 70
UPSAMPLE = 8  # sub-cells per token cell, so contours run along the cell borders


def _grid(values, name: str, dtype) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    if array.ndim != 2:
        raise ValueError(f"{name} must be an [h, w] grid, got shape {array.shape}")
    return array


def _printable(text: str) -> str:
    """Model output can hold control characters the font lacks; show them as a middle dot."""
    return "".join(c if c.isprintable() or c == "\n" else "\u00b7" for c in text)


def _outline(ax, mask: np.ndarray, width: int, height: int, **style) -> None:
    """Contour of a boolean token grid along its cell borders, closed at the image edge."""
    if not mask.any():
        return
    fine = np.pad(np.kron(mask.astype(float), np.ones((UPSAMPLE, UPSAMPLE))), 1)
    xs = (np.arange(fine.shape[1]) - 0.5) * width / (mask.shape[1] * UPSAMPLE)
    ys = (np.arange(fine.shape[0]) - 0.5) * height / (mask.shape[0] * UPSAMPLE)
    ax.contour(xs, ys, fine, levels=[0.5], **style)


def render_rollout(image: Image.Image, selected, segments: Sequence[str], weights: Sequence[float], out_png: Path,
                   title: str = "", labels=None, key=None, weight_range: tuple[float, float] = (0.1, 1.0)) -> Path:
    """Draw one rollout (first image's grids, each [h, w] on the visual-token grid) into ``out_png`` (atomic).

    ``selected``: the tokens the alignment read; ``labels``/``key``: SGUF's components and key regions
    (both or neither); ``weights``: one per segment.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap, Normalize

    chosen = _grid(selected, "selected", bool)
    if (labels is None) != (key is None):
        raise ValueError("pass SGUF's labels and key together, or neither")
    components = None if labels is None else _grid(labels, "labels", int)
    key_grid = None if key is None else _grid(key, "key", bool)
    for name, grid in (("labels", components), ("key", key_grid)):
        if grid is not None and grid.shape != chosen.shape:
            raise ValueError(f"{name} {grid.shape} and selected {chosen.shape} grids differ")
    weights = [float(w) for w in weights]
    if len(weights) != len(segments):
        raise ValueError(f"{len(segments)} segments but {len(weights)} weights")
    rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    extent = (0, width, height, 0)
    h, w = chosen.shape

    lines = [textwrap.wrap(_printable(s.strip()), WRAP_CHARS) or [""] for s in segments]
    n_lines = sum(len(block) + 1 for block in lines)
    fig = plt.figure(figsize=(12, max(4.0, 0.22 * n_lines + 1.0)))
    ax_img = fig.add_axes((0.02, 0.08, 0.38, 0.84))
    ax_txt = fig.add_axes((0.42, 0.02, 0.56, 0.92))
    ax_img.imshow(rgb)
    fill = key_grid if key_grid is not None else chosen
    ax_img.imshow(np.where(fill, 1.0, np.nan), cmap=ListedColormap(["orange"]), alpha=0.35, extent=extent,
                  interpolation="nearest", vmin=0, vmax=1)
    _outline(ax_img, fill, width, height, colors="orange", linewidths=2)
    if components is not None:
        for c in range(int(components.max()) + 1):  # thin boundaries of every component
            _outline(ax_img, components == c, width, height, colors="magenta", linewidths=0.6, alpha=0.7)
        rows, cols = np.nonzero(chosen & ~key_grid)  # the sampled background tokens
        ax_img.scatter((cols + 0.5) * width / w, (rows + 0.5) * height / h, s=12, c="cyan", edgecolors="black",
                       linewidths=0.4, zorder=3)
        caption = (f"SGUF: {int(components.max()) + 1} components, key tokens {int(key_grid.sum())}/{chosen.size}, "
                   f"sampled background {int((chosen & ~key_grid).sum())}")
    else:
        caption = f"selected tokens {int(chosen.sum())}/{chosen.size}"
    ax_img.set_xlim(0, width)
    ax_img.set_ylim(height, 0)
    ax_img.set_title(caption, fontsize=9)
    ax_img.axis("off")

    low, high = weight_range
    norm = Normalize(vmin=low, vmax=high if high > low else low + 1e-6)
    cmap = plt.get_cmap("Reds")
    ax_txt.axis("off")
    ax_txt.set_xlim(0, 1)
    ax_txt.set_ylim(0, n_lines)
    y = n_lines
    for block, weight in zip(lines, weights):
        top = y
        y -= len(block)
        ax_txt.add_patch(plt.Rectangle((0, y - 0.3), 1, top - y + 0.1, color=cmap(norm(weight)), alpha=0.6, lw=0))
        for i, line in enumerate(block):
            ax_txt.text(0.01, top - i - 0.75, line, fontsize=8, family="monospace", va="baseline", parse_math=False)
        ax_txt.text(0.99, top - 0.75, f"w={weight:.2f}", fontsize=8, ha="right", va="baseline", weight="bold")
        y -= 1
    if title:
        fig.suptitle(_printable(title), fontsize=10, parse_math=False)
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out_png
