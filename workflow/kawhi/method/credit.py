"""Spatial alignment of response tokens with the selected visual tokens, and the paragraph weights.

METHOD.md sections 3 and 5 (the paper's Eq. 12-15):

- ``alignment``: alpha_t = mean over heads h and selected visual tokens v of cos(q_t^h, k_v^h). The
  mean of cosines is the dot product of the unit query with the mean unit key, per head, so the cost
  is one pass over the keys plus O(T H d).
- ``paragraph_weights``: w~_j = (1 - lam) softmax_j(alpha_bar_j / tau) + lam / M and
  w_j = w_min + (w_max - w_min) w~_j, one weight per paragraph.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.functional import normalize


def alignment(q_resp: Tensor, k_vis: Tensor, selected: Tensor) -> Tensor:
    """alpha_t in [-1, 1] for each response token: q_resp [T, H, d], k_vis [N, H, d], selected bool [N] -> [T].

    The heads are those of H_c (already restricted and GQA-expanded by the caller); ``q_resp`` may hold
    keys instead of queries (the Key-Key ablation). No selected token gives alpha = 0 (no evidence).
    """
    if q_resp.dim() != 3 or k_vis.dim() != 3 or q_resp.shape[1:] != k_vis.shape[1:]:
        raise ValueError(f"need q_resp [T, H, d] and k_vis [N, H, d] with equal H, d; got {tuple(q_resp.shape)}, "
                         f"{tuple(k_vis.shape)}")
    if selected.shape != k_vis.shape[:1]:
        raise ValueError(f"selected {tuple(selected.shape)} must have one entry per visual token ({k_vis.shape[0]})")
    rows = torch.zeros(k_vis.shape[0], dtype=torch.long, device=k_vis.device)
    return cosine_to_centre(q_resp, mean_unit_keys(k_vis, rows, selected, 1)[0])


def mean_unit_keys(keys: Tensor, rows: Tensor, selected: Tensor, n_rows: int) -> Tensor:
    """Per row, the mean of the unit keys of its selected tokens: keys [n, H, d] of rows [n] -> [n_rows, H, d]
    in float32 (zero for a row without selected tokens)."""
    flags = selected.to(keys.device).float()
    unit = normalize(keys.float(), dim=-1) * flags[:, None, None]
    rows = rows.to(keys.device)
    sums = torch.zeros(n_rows, *keys.shape[1:], device=keys.device).index_add_(0, rows, unit)
    counts = torch.zeros(n_rows, device=keys.device).index_add_(0, rows, flags)
    return sums / counts.clamp(min=1)[:, None, None]


def cosine_to_centre(probe: Tensor, centre: Tensor) -> Tensor:
    """Mean over heads of unit(probe) . centre: probe [..., T, H, d], centre [..., H, d] -> [..., T].

    With ``centre`` the mean unit key of the selected tokens this is the mean of the cosines (Eq. 13).
    """
    cos = (normalize(probe.float(), dim=-1) * centre.unsqueeze(-3)).sum(dim=-1).mean(dim=-1)
    return cos.clamp(-1.0, 1.0)


def check_weight_settings(tau: float, lam: float, w_min: float, w_max: float) -> None:
    if tau <= 0:
        raise ValueError(f"kawhi.tau must be > 0, got {tau}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"kawhi.lam must be in [0, 1], got {lam}")
    if not 0.0 <= w_min <= w_max:
        raise ValueError(f"need 0 <= kawhi.w_min <= kawhi.w_max, got [{w_min}, {w_max}]")


def paragraph_weights(alpha: Tensor, *, tau: float = 0.1, lam: float = 0.1, w_min: float = 0.1,
                      w_max: float = 1.0) -> Tensor:
    """Eq. 15 for one response: alpha [M] (the paragraphs' mean alignments) -> weights [M] in [w_min, w_max]."""
    if alpha.dim() != 1 or alpha.numel() == 0:
        raise ValueError(f"alpha must be a non-empty [M] vector, got shape {tuple(alpha.shape)}")
    return padded_paragraph_weights(alpha[None], torch.ones_like(alpha, dtype=torch.bool)[None], tau=tau, lam=lam,
                                    w_min=w_min, w_max=w_max)[0]


def padded_paragraph_weights(alpha: Tensor, present: Tensor, *, tau: float, lam: float, w_min: float,
                             w_max: float) -> Tensor:
    """Eq. 15 row by row for [B, M] alphas where ``present`` marks real paragraphs (rows have different M);
    absent entries come back as 1."""
    check_weight_settings(tau, lam, w_min, w_max)
    dtype = torch.promote_types(alpha.dtype, torch.float32)
    present = present.bool()
    scores = torch.where(present, alpha.to(dtype) / tau, torch.tensor(float("-inf"), dtype=dtype))
    softmax = torch.softmax(scores, dim=-1)
    m = present.sum(dim=-1, keepdim=True).clamp(min=1).to(dtype)
    mixed = (1.0 - lam) * softmax + lam / m
    weights = w_min + (w_max - w_min) * mixed
    return torch.where(present, weights, torch.ones_like(weights))


def segment_means(values: Tensor, ids: Tensor, n_segments: int | None = None) -> Tensor:
    """Per-segment mean of ``values`` [T] for segment ids [T] in 0..M-1 (alpha_bar_j, Eq. 14)."""
    n = int(ids.max()) + 1 if n_segments is None else n_segments
    counts = torch.bincount(ids, minlength=n).clamp(min=1)
    sums = torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(0, ids, values)
    return sums / counts.to(values.dtype)
