"""Alignment of response tokens with the critical region, and the weighted harmonic credit weights.

METHOD.md sections 4 and 5. Alignment is per token (kq or kk), averaged within each segment; the
weights are one per segment, conserve the response's total credit (token-weighted mean 1) and lie
in [w_min, w_max].
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

METRICS = ("kq", "kk")


def kq_alignment(q_tokens: Tensor, k_visual: Tensor, critical: Tensor, scaling: float) -> Tensor:
    """a_t = mean over heads of sum_{v in M} softmax_v(q_t . k_v * scaling), renormalised over visual keys.

    q_tokens: [H, T, d], k_visual: [H, N, d], critical: bool [N] -> [T].
    """
    attention = torch.softmax(torch.matmul(q_tokens, k_visual.transpose(-1, -2)) * scaling, dim=-1)
    return (attention * critical.to(attention.dtype)).sum(dim=-1).mean(dim=0)


def kk_alignment(k_tokens: Tensor, k_visual: Tensor, critical: Tensor) -> Tensor:
    """a_t = mean over heads of the mean over v in M of (1 + cos(k_t, k_v)) / 2.

    k_tokens: [H, T, d], k_visual: [H, N, d], critical: bool [N] -> [T].
    """
    k_crit = torch.nn.functional.normalize(k_visual[:, critical], dim=-1)
    k_tok = torch.nn.functional.normalize(k_tokens, dim=-1)
    # mean of cosines = cosine with the mean of the unit critical keys (one matmul per head)
    cos = torch.matmul(k_tok, k_crit.mean(dim=1, keepdim=True).transpose(-1, -2)).squeeze(-1)
    return ((1.0 + cos) / 2.0).mean(dim=0)


def segment_means(values: Tensor, ids: Tensor, n_segments: int | None = None) -> tuple[Tensor, Tensor]:
    """Per-segment mean of ``values`` and the segment token counts, for segment ids 0..S-1."""
    n = int(ids.max()) + 1 if n_segments is None else n_segments
    lengths = torch.bincount(ids, minlength=n)
    sums = torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(0, ids, values)
    return sums / lengths.clamp(min=1).to(values.dtype), lengths


def harmonic_weights(alignment: Tensor, lengths: Tensor, lam: float = 0.5, w_min: float = 0.5,
                     w_max: float = 2.0, eps: float = 1e-6) -> Tensor:
    """One weight per segment from its alignment a_p and its token count (METHOD.md section 5).

    r_p = a_p / abar (abar token-weighted), u_p = 1 / ((1 - lam) + lam / max(r_p, eps)), then w is u
    rescaled to token-weighted mean 1 and clipped to [w_min, w_max] *with* the mean held at 1: the
    scale c solving mean(clip(c * u)) = 1 is found exactly (clip-then-renormalise alone could leave
    the bounds again). Returns all ones when there is at most one segment, lam = 0, the alignment
    is constant, or its mean is not positive -- exactly the base algorithm.
    """
    if alignment.shape != lengths.shape or alignment.dim() != 1:
        raise ValueError(f"alignment {tuple(alignment.shape)} and lengths {tuple(lengths.shape)} must be equal 1-D")
    if bool((lengths <= 0).any()):
        raise ValueError("every segment needs at least one token (lengths > 0)")
    return harmonic_weights_batched(alignment[None], lengths[None], lam, w_min, w_max, eps)[0]


def harmonic_weights_batched(alignment: Tensor, lengths: Tensor, lam: float = 0.5, w_min: float = 0.5,
                             w_max: float = 2.0, eps: float = 1e-6) -> Tensor:
    """``harmonic_weights`` for B rollouts at once: [B, S] alignments and token counts, where a count
    of 0 marks padding (rows with fewer segments); padded entries come back as 1."""
    if alignment.shape != lengths.shape or alignment.dim() != 2:
        raise ValueError(f"alignment {tuple(alignment.shape)} and lengths {tuple(lengths.shape)} must be equal [B, S]")
    if not w_min <= 1.0 <= w_max:
        raise ValueError(f"need w_min <= 1 <= w_max to conserve credit, got [{w_min}, {w_max}]")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"kawhi.lam must be in [0, 1], got {lam}")
    out_dtype = alignment.dtype if alignment.is_floating_point() else torch.float32
    if alignment.numel() == 0 or lam == 0.0:
        return torch.ones_like(alignment, dtype=out_dtype)
    # [B, S] with S = segments per response is tiny: float64 numpy on the CPU is exact and cheapest
    a = alignment.detach().to(device="cpu", dtype=torch.float64).numpy()
    n = lengths.detach().to(device="cpu", dtype=torch.float64).numpy().clip(min=0)
    present = n > 0
    a = np.where(present, a, 0.0)
    total = n.sum(axis=1, keepdims=True)
    abar = (n * a).sum(axis=1, keepdims=True) / np.maximum(total, 1)
    first = np.take_along_axis(a, present.argmax(axis=1)[:, None], axis=1)
    with np.errstate(invalid="ignore"):
        degenerate = ((present.sum(axis=1) <= 1) | (abar[:, 0] <= 0) | ~np.isfinite(a).all(axis=1)
                      | ~(present & (a != first)).any(axis=1))
        r = np.maximum(a / np.where(abar > 0, abar, 1.0), eps)
        u = np.where(present, 1.0 / ((1.0 - lam) + lam / r), 1.0)
    u = u / ((n * u).sum(axis=1, keepdims=True) / np.maximum(total, 1))
    w = _clip_at_unit_mean(u, n, w_min, w_max)
    w = np.where(present & ~degenerate[:, None], w, 1.0)
    return torch.from_numpy(w).to(device=alignment.device, dtype=out_dtype)


def _clip_at_unit_mean(u: np.ndarray, n: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Per row, clip(c * u, lo, hi) with c > 0 chosen so that the n-weighted mean is exactly 1.

    f(c) = sum_i n_i clip(c u_i, lo, hi) is non-decreasing and piecewise linear with breakpoints at
    lo / u_i and hi / u_i; evaluate it at every breakpoint (sorted, with prefix sums, O(S log S)),
    then interpolate linearly inside the piece where it crosses sum(n). Entries with n = 0 do not
    count. Rows already inside the bounds keep c = 1.
    """
    inside = (((u >= lo) & (u <= hi)) | (n == 0)).all(axis=1)
    if inside.all():
        return u
    rows = np.arange(u.shape[0])[:, None]
    total = n.sum(axis=1, keepdims=True)
    enter, leave = lo / u, hi / u  # c at which entry i leaves the lower clip / reaches the upper one
    order_in, order_out = np.argsort(enter, axis=1), np.argsort(leave, axis=1)
    enter_sorted, leave_sorted = enter[rows, order_in], leave[rows, order_out]
    zero = np.zeros((u.shape[0], 1))
    nu = n * u
    n_in = np.concatenate([zero, np.cumsum(n[rows, order_in], axis=1)], axis=1)
    nu_in = np.concatenate([zero, np.cumsum(nu[rows, order_in], axis=1)], axis=1)
    n_out = np.concatenate([zero, np.cumsum(n[rows, order_out], axis=1)], axis=1)
    nu_out = np.concatenate([zero, np.cumsum(nu[rows, order_out], axis=1)], axis=1)

    points = np.sort(np.concatenate([enter, leave], axis=1), axis=1)
    # entries with enter <= c (no longer at the bottom) and with leave <= c (at the top), per row
    i = np.stack([np.searchsorted(e, p, side="right") for e, p in zip(enter_sorted, points)])
    j = np.stack([np.searchsorted(e, p, side="right") for e, p in zip(leave_sorted, points)])
    values = lo * (total - n_in[rows, i]) + points * (nu_in[rows, i] - nu_out[rows, j]) + hi * n_out[rows, j]
    k = np.array([np.searchsorted(v, t) for v, t in zip(values, total[:, 0])])[:, None]
    k = k.clip(1, points.shape[1] - 1)  # first breakpoint with f >= total
    c0, c1 = np.take_along_axis(points, k - 1, 1), np.take_along_axis(points, k, 1)
    f0, f1 = np.take_along_axis(values, k - 1, 1), np.take_along_axis(values, k, 1)
    rising = f1 > f0
    c = np.where(rising, c0 + (total - f0) * (c1 - c0) / np.where(rising, f1 - f0, 1.0), c1)
    c = np.where(inside[:, None], 1.0, c)
    return np.clip(c * u, lo, hi)
