"""Alignment of response tokens with the critical region, and the weighted harmonic credit weights.

METHOD.md sections 4 and 5. Alignment is per token (kq or kk), averaged within each segment; the
weights are one per segment, conserve the response's total credit (token-weighted mean 1) and lie
in [w_min, w_max].
"""

from __future__ import annotations

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
    ones = torch.ones_like(alignment, dtype=out_dtype)
    if alignment.numel() == 0 or lam == 0.0:
        return ones
    present = lengths > 0
    n = lengths.to(torch.float64).clamp(min=0)
    a = torch.where(present, alignment.to(torch.float64), 0.0)
    total = n.sum(dim=1, keepdim=True)
    abar = (n * a).sum(dim=1, keepdim=True) / total.clamp(min=1)
    first = a.gather(1, present.to(torch.int64).argmax(dim=1, keepdim=True))
    degenerate = ((present.sum(dim=1) <= 1) | (abar[:, 0] <= 0) | ~torch.isfinite(a).all(dim=1)
                  | (present & (a != first)).sum(dim=1).eq(0))
    r = (a / torch.where(abar > 0, abar, 1.0)).clamp(min=eps)
    u = torch.where(present, 1.0 / ((1.0 - lam) + lam / r), 1.0)
    u = u / ((n * u).sum(dim=1, keepdim=True) / total.clamp(min=1))
    w = _clip_at_unit_mean(u, n, w_min, w_max)
    keep = present & ~degenerate[:, None]
    return torch.where(keep, w, 1.0).to(out_dtype)


def _clip_at_unit_mean(u: Tensor, n: Tensor, lo: float, hi: float) -> Tensor:
    """Per row, clip(c * u, lo, hi) with c > 0 chosen so that the n-weighted mean is exactly 1.

    f(c) = sum_i n_i clip(c u_i, lo, hi) is non-decreasing and piecewise linear with breakpoints at
    lo / u_i and hi / u_i; evaluate it at every breakpoint (sorted, with prefix sums, O(S log S)),
    then interpolate linearly inside the piece where it crosses sum(n). Entries with n = 0 do not
    count. Rows already inside the bounds keep c = 1.
    """
    inside = ((u >= lo) & (u <= hi)) | (n == 0)
    if bool(inside.all()):
        return u
    total = n.sum(dim=1, keepdim=True)
    enter = lo / u  # c at which entry i leaves the lower clip
    leave = hi / u  # c at which entry i reaches the upper clip
    enter_sorted, order_in = torch.sort(enter, dim=1)
    leave_sorted, order_out = torch.sort(leave, dim=1)
    zero = u.new_zeros(u.shape[0], 1)
    nu = n * u
    n_in = torch.cat([zero, torch.cumsum(n.gather(1, order_in), 1)], 1)
    nu_in = torch.cat([zero, torch.cumsum(nu.gather(1, order_in), 1)], 1)
    n_out = torch.cat([zero, torch.cumsum(n.gather(1, order_out), 1)], 1)
    nu_out = torch.cat([zero, torch.cumsum(nu.gather(1, order_out), 1)], 1)

    points = torch.sort(torch.cat([enter, leave], dim=1), dim=1).values
    i = torch.searchsorted(enter_sorted, points, right=True)  # entries with enter <= c
    j = torch.searchsorted(leave_sorted, points, right=True)  # entries with leave <= c (at the top)
    values = (lo * (total - n_in.gather(1, i)) + points * (nu_in.gather(1, i) - nu_out.gather(1, j))
              + hi * n_out.gather(1, j))
    k = torch.searchsorted(values, total).clamp(1, points.shape[1] - 1)  # first breakpoint with f >= total
    c0, c1 = points.gather(1, k - 1), points.gather(1, k)
    f0, f1 = values.gather(1, k - 1), values.gather(1, k)
    slope = torch.where(f1 > f0, (c1 - c0) / (f1 - f0), 0.0)
    c = torch.where(f1 > f0, c0 + (total - f0) * slope, c1)
    c = torch.where(inside.all(dim=1, keepdim=True), 1.0, c)
    return (c * u).clamp(lo, hi)
