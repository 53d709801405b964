"""Visual saliency from the critical heads, and the critical-region mask M (METHOD.md section 2).

SGUF (saliency-guided union-find, our reading of the paper's hierarchical geometric aggregation):
a pyramid of average-pooled saliency grids; at each level the cells above mean + kappa * std are
seeds; 8-connected seeds are joined into regions (connected-component labelling, which is what
union-find computes); regions from all levels compete by score and are taken greedily until they
hold ``mass`` of the image's saliency or ``max_fraction`` of its tokens.

A region's score is its *excess* saliency mass, sum over covered tokens of (s_v - mean s). With the
plain mass a coarse region always outscores the fine region it contains (it covers more tokens),
so the selection would degenerate into "the biggest region under the token cap"; the excess mass
rewards covering salient tokens and penalises covering background, so a tight region wins unless
its coarse parent adds more salient than dull tokens. The greedy step scores each region by the
excess of the tokens it would *add* (so a coarse region does not re-earn the score of a fine one
already taken inside it) and stops when no region adds positive excess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

REGION_METHODS = ("sguf", "random", "inverse")
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Region:
    """A connected group of seed cells at one pyramid level, as the level-0 tokens it covers."""

    tokens: np.ndarray  # bool [h, w]
    score: float  # excess saliency mass of the covered tokens
    level: int


def visual_saliency(q_question: Tensor, k_visual: Tensor, scaling: float) -> Tensor:
    """s_v: mean over heads (and layers, flattened into dim 0) and question tokens of softmax_v(q . k_v * scaling).

    q_question: [H, Q, d], k_visual: [H, N, d] -> [N]; the attention is renormalised over visual keys.
    """
    attention = torch.softmax(torch.matmul(q_question, k_visual.transpose(-1, -2)) * scaling, dim=-1)
    return attention.mean(dim=(0, 1))


def _avg_pool(grid: np.ndarray, size: int) -> np.ndarray:
    """Average over size x size blocks; edge blocks average only their in-grid cells (ceil mode)."""
    if size == 1:
        return grid
    height, width = grid.shape
    ph, pw = -(-height // size) * size, -(-width // size) * size
    padded = np.zeros((ph, pw))
    padded[:height, :width] = grid
    counts = np.zeros((ph, pw))
    counts[:height, :width] = 1.0
    blocks = (ph // size, size, pw // size, size)
    return padded.reshape(blocks).sum(axis=(1, 3)) / counts.reshape(blocks).sum(axis=(1, 3))


def _region_covers(values: np.ndarray, levels: int, kappa: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every region of every level as rows of a bool matrix over the h*w tokens, with score and level."""
    height, width = values.shape
    excess = (values - values.mean()).reshape(-1)
    covers, scores, region_levels = [], [], []
    for level in range(levels):
        size = 2 ** level
        if level and size // 2 >= max(height, width):
            break  # the previous level was already a single cell
        pooled = _avg_pool(values, size)
        mean, std = pooled.mean(), pooled.std()
        if std <= 1e-12 * max(abs(mean), 1e-30):
            continue  # a flat level has no seeds (uniform saliency -> arg-max fallback)
        labels, count = ndimage.label(pooled > mean + kappa * std, structure=_EIGHT_CONNECTED)
        if count == 0:
            continue
        if size > 1:
            labels = np.repeat(np.repeat(labels, size, axis=0), size, axis=1)[:height, :width]
        flat = labels.reshape(-1)
        covers.append(flat[None, :] == np.arange(1, count + 1)[:, None])
        scores.append(np.bincount(flat, weights=excess, minlength=count + 1)[1:])
        region_levels.append(np.full(count, level))
    if not covers:
        return np.zeros((0, values.size), dtype=bool), np.zeros(0), np.zeros(0, dtype=int)
    covers_all, scores_all, levels_all = np.concatenate(covers), np.concatenate(scores), np.concatenate(region_levels)
    order = np.lexsort((levels_all, -scores_all))  # best score first; ties: finer level first
    return covers_all[order], scores_all[order], levels_all[order]


def _as_numpy(saliency: Tensor | np.ndarray) -> np.ndarray:
    values = saliency.detach().to(torch.float64).cpu().numpy() if isinstance(saliency, Tensor) else saliency
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"saliency must be a non-empty [h, w] grid, got shape {values.shape}")
    return values


def sguf_regions(saliency: Tensor, levels: int = 3, kappa: float = 0.5) -> list[Region]:
    """All candidate regions of every pyramid level, best score first (ties: finer level first)."""
    values = _as_numpy(saliency)
    covers, scores, region_levels = _region_covers(values, levels, kappa)
    return [Region(tokens=c.reshape(values.shape), score=float(s), level=int(lv))
            for c, s, lv in zip(covers, scores, region_levels)]


def sguf_mask(values: np.ndarray, levels: int = 3, kappa: float = 0.5, mass: float = 0.5,
              max_fraction: float = 0.25) -> np.ndarray:
    """``sguf_select`` on a numpy [h, w] grid (float64), returning a numpy bool grid."""
    values = _as_numpy(values)
    covers, _, _ = _region_covers(values, levels, kappa)
    flat = values.reshape(-1)
    cap = max(1, int(np.floor(max_fraction * flat.size)))
    target = mass * flat.sum()
    excess = flat - flat.mean()
    selected = np.zeros(flat.size, dtype=bool)
    while len(covers):
        # marginal score: what each region would add, so a coarse region never re-earns the
        # score of the fine region already taken inside it
        gain = covers[:, ~selected] @ excess[~selected]
        best = int(np.argmax(gain))  # first of equal gains = finer level (regions are sorted)
        if gain[best] <= 0:
            break
        new = covers[best] & ~selected
        n_new, room = int(new.sum()), cap - int(selected.sum())
        if n_new > room:
            candidates = np.flatnonzero(new)
            selected[candidates[np.argsort(-flat[candidates], kind="stable")[:room]]] = True
            break
        selected |= new
        if flat[selected].sum() >= target:
            break
    if not selected.any():
        selected[int(np.argmax(flat))] = True
    return selected.reshape(values.shape)


def sguf_select(saliency: Tensor, levels: int = 3, kappa: float = 0.5, mass: float = 0.5,
                max_fraction: float = 0.25) -> Tensor:
    """Critical mask M over the [h, w] saliency grid (never empty).

    Regions are taken greedily by marginal score (the excess mass of the tokens they would add) while
    that is positive; a region that would overflow the token cap (max(1, floor(max_fraction * h * w)))
    contributes only its most salient new tokens up to the cap, and selection stops there or as soon
    as M holds ``mass`` of the total saliency.
    """
    mask = sguf_mask(_as_numpy(saliency), levels, kappa, mass, max_fraction)
    return torch.from_numpy(mask).to(saliency.device)


def random_select(shape: tuple[int, int], count: int, generator: torch.Generator) -> Tensor:
    """``count`` tokens uniformly at random (the `random` ablation), from a seeded generator."""
    n = shape[0] * shape[1]
    chosen = torch.randperm(n, generator=generator)[:count]
    mask = torch.zeros(n, dtype=torch.bool)
    mask[chosen] = True
    return mask.view(shape)


def inverse_select(saliency: Tensor, count: int) -> Tensor:
    """The ``count`` least salient tokens (the `inverse` ablation)."""
    flat = saliency.reshape(-1)
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[torch.topk(flat, count, largest=False).indices] = True
    return mask.view(saliency.shape)


def select_critical(saliency: Tensor, method: str, levels: int = 3, kappa: float = 0.5, mass: float = 0.5,
                    max_fraction: float = 0.25, generator: torch.Generator | None = None) -> Tensor:
    """M for one image by ``kawhi.regions``: sguf, or random / inverse with as many tokens as SGUF picks."""
    if method not in REGION_METHODS:
        raise ValueError(f"kawhi.regions must be one of {REGION_METHODS}, got '{method}'")
    mask = sguf_select(saliency, levels, kappa, mass, max_fraction)
    if method == "sguf":
        return mask
    count = int(mask.sum())
    if method == "inverse":
        return inverse_select(saliency, count)
    if generator is None:
        raise ValueError("regions 'random' needs a seeded torch.Generator")
    return random_select(tuple(saliency.shape), count, generator).to(saliency.device)
