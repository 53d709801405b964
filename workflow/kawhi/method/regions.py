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

SGUF runs on the CPU in float64 (numpy + scipy's C union-find labelling), for a whole stack of
same-shaped grids at once; the grids are tiny next to the attention arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

REGION_METHODS = ("sguf", "random", "inverse")


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


# 8-connectivity inside each grid of a [G, h, w] stack, none across grids: one scipy labelling call
# (union-find in C) labels the whole batch.
_SLICE_EIGHT = np.zeros((3, 3, 3), dtype=bool)
_SLICE_EIGHT[1] = True


def _components(seeds: np.ndarray) -> np.ndarray:
    """8-connected components of boolean grids [G, h, w], labelled 1.. per grid (0 = not a seed)."""
    labels, count = ndimage.label(seeds, structure=_SLICE_EIGHT)
    if count == 0:
        return labels
    # scipy numbers components in scan order, so each grid's labels are one contiguous run
    flat = labels.reshape(labels.shape[0], -1)
    first = np.where(flat > 0, flat, np.iinfo(flat.dtype).max).min(axis=1, keepdims=True)
    return np.where(flat > 0, flat - first + 1, 0).reshape(labels.shape)


def _avg_pool(values: np.ndarray, size: int) -> np.ndarray:
    """Average of size x size blocks of [G, h, w]; edge blocks average their in-grid cells only."""
    g, height, width = values.shape
    ph, pw = -(-height // size) * size, -(-width // size) * size
    padded = np.zeros((g, ph, pw))
    padded[:, :height, :width] = values
    counts = np.zeros((ph, pw))
    counts[:height, :width] = 1.0
    sums = padded.reshape(g, ph // size, size, pw // size, size).sum(axis=(2, 4))
    return sums / counts.reshape(ph // size, size, pw // size, size).sum(axis=(1, 3))


def _region_covers(values: np.ndarray, levels: int, kappa: float) -> tuple[np.ndarray, np.ndarray]:
    """All regions of every level for grids [G, h, w] (float64): covers [G, h*w, R] (token in region;
    column r of grid g is that grid's r-th region, or empty) and each column's level [R]. Columns run
    level by level, so among equal scores argmax picks the finer level."""
    g, height, width = values.shape
    covers, region_levels = [], []
    for level in range(levels):
        size = 2 ** level
        if level and size >= max(height, width):
            break  # a single-cell level has no contrast, and neither has any coarser one
        pooled = values if level == 0 else _avg_pool(values, size)
        mean = pooled.mean(axis=(1, 2))
        std = pooled.std(axis=(1, 2))
        textured = std > 1e-12 * np.maximum(np.abs(mean), 1e-30)  # a flat grid has no seeds -> arg-max fallback
        seeds = (pooled > (mean + kappa * std)[:, None, None]) & textured[:, None, None]
        labels = _components(seeds)
        n_regions = int(labels.max())
        if n_regions == 0:
            continue
        if size > 1:
            labels = labels.repeat(size, axis=1).repeat(size, axis=2)[:, :height, :width]
        covers.append(labels.reshape(g, -1, 1) == np.arange(1, n_regions + 1))
        region_levels.append(np.full(n_regions, level))
    if not covers:
        return np.zeros((g, height * width, 0), dtype=bool), np.zeros(0, dtype=int)
    return np.concatenate(covers, axis=2), np.concatenate(region_levels)


def _as_grids(saliency: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(saliency, Tensor):
        saliency = saliency.detach().to(device="cpu", dtype=torch.float64).numpy()
    values = np.asarray(saliency, dtype=np.float64)
    if values.ndim != 3 or values.shape[1] == 0 or values.shape[2] == 0:
        raise ValueError(f"saliency must be non-empty [h, w] grids, got shape {values.shape[1:]}")
    return values


def sguf_regions(saliency: Tensor, levels: int = 3, kappa: float = 0.5) -> list[Region]:
    """All candidate regions of every pyramid level of one [h, w] grid, best score first (ties: finer first)."""
    if saliency.dim() != 2:
        raise ValueError(f"saliency must be an [h, w] grid, got shape {tuple(saliency.shape)}")
    values = _as_grids(saliency[None])
    covers, region_levels = _region_covers(values, levels, kappa)
    flat = values.reshape(-1)
    scores = (flat - flat.mean()) @ covers[0]
    order = np.lexsort((region_levels, -scores))
    return [Region(tokens=covers[0, :, r].reshape(tuple(saliency.shape)), score=float(scores[r]),
                   level=int(region_levels[r])) for r in order]


def sguf_select_batched(saliency: Tensor, levels: int = 3, kappa: float = 0.5, mass: float = 0.5,
                        max_fraction: float = 0.25) -> Tensor:
    """``sguf_select`` for G grids of one shape [G, h, w] at once -> BoolTensor [G, h, w] (on the CPU)."""
    values = _as_grids(saliency)
    g, height, width = values.shape
    flat = values.reshape(g, -1)
    covers, _ = _region_covers(values, levels, kappa)
    covers_f = covers.astype(np.float64)
    n_tokens = flat.shape[1]
    cap = max(1, int(math.floor(max_fraction * n_tokens)))
    target = mass * flat.sum(axis=1)
    excess = flat - flat.mean(axis=1, keepdims=True)
    selected = np.zeros((g, n_tokens), dtype=bool)
    done = np.zeros(g, dtype=bool)
    rows = np.arange(g)
    for _ in range(covers.shape[2]):
        # marginal score: the excess mass of the tokens a region would add, so a coarse region never
        # re-earns the score of the fine region already taken inside it
        gain = np.matmul(np.where(selected, 0.0, excess)[:, None, :], covers_f)[:, 0]
        best = gain.argmax(axis=1)  # first of equal gains = finer level
        done |= gain[rows, best] <= 0
        if done.all():
            break
        new = covers[rows, :, best] & ~selected & ~done[:, None]
        room = cap - selected.sum(axis=1)
        overflow = new.sum(axis=1) > room
        if overflow.any():
            # a region that overflows the cap contributes only its most salient new tokens
            order = np.argsort(np.where(new, -flat, np.inf), axis=1, kind="stable")
            rank = np.empty_like(order)
            np.put_along_axis(rank, order, np.arange(n_tokens)[None].repeat(g, 0), axis=1)
            new = np.where(overflow[:, None], new & (rank < room[:, None]), new)
        selected |= new
        done |= overflow | ((flat * selected).sum(axis=1) >= target)
    empty = ~selected.any(axis=1)
    selected[empty, flat[empty].argmax(axis=1)] = True
    return torch.from_numpy(selected.reshape(g, height, width))


def sguf_select(saliency: Tensor, levels: int = 3, kappa: float = 0.5, mass: float = 0.5,
                max_fraction: float = 0.25) -> Tensor:
    """Critical mask M over the [h, w] saliency grid (never empty).

    Regions are taken greedily by marginal score (the excess mass of the tokens they would add) while
    that is positive; a region that would overflow the token cap (max(1, floor(max_fraction * h * w)))
    contributes only its most salient new tokens up to the cap, and selection stops there or as soon
    as M holds ``mass`` of the total saliency.
    """
    if saliency.dim() != 2:
        raise ValueError(f"saliency must be an [h, w] grid, got shape {tuple(saliency.shape)}")
    return sguf_select_batched(saliency[None], levels, kappa, mass, max_fraction)[0].to(saliency.device)


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
    """M for one [h, w] image by ``kawhi.regions``: sguf, or random / inverse with as many tokens as SGUF picks."""
    generators = [generator] if generator is not None else None
    return select_critical_batched(saliency[None], method, levels, kappa, mass, max_fraction,
                                   generators)[0].to(saliency.device)


def select_critical_batched(saliency: Tensor, method: str, levels: int = 3, kappa: float = 0.5,
                            mass: float = 0.5, max_fraction: float = 0.25,
                            generators: list[torch.Generator] | None = None) -> Tensor:
    """``select_critical`` for G same-shaped grids [G, h, w] -> BoolTensor [G, h, w] on the CPU.

    ``random`` needs one seeded generator per grid.
    """
    if method not in REGION_METHODS:
        raise ValueError(f"kawhi.regions must be one of {REGION_METHODS}, got '{method}'")
    masks = sguf_select_batched(saliency, levels, kappa, mass, max_fraction)
    if method == "sguf":
        return masks
    counts = masks.flatten(1).sum(dim=1)
    shape = tuple(saliency.shape[1:])
    if method == "inverse":
        # the |M| least salient tokens: rank ascending (stable), keep rank < |M|
        flat = saliency.detach().to(device="cpu", dtype=torch.float64).flatten(1)
        order = torch.sort(flat, dim=1, stable=True).indices
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(flat.shape[1]).expand_as(order))
        return (rank < counts[:, None]).view(-1, *shape)
    if generators is None or len(generators) != saliency.shape[0]:
        raise ValueError("regions 'random' needs one seeded torch.Generator per image")
    return torch.stack([random_select(shape, int(c), gen) for c, gen in zip(counts.tolist(), generators)])
