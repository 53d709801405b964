"""The KAWHI entry point: a batch of rollouts plus its captured q/k -> a [B, T] token-weight tensor.

Batch layout (TRL's): ``input_ids`` = left-padded prompt + right-padded completion, the completion
being the last T positions; ``completion_mask`` is 0 on completion padding. The token advantage is
A_{i,t} = A_i * weights[i, t]; the weights are 1.0 on padding and wherever METHOD.md says w = 1.

Everything runs for the whole batch at once, with no Python loop over tokens. The attention
arithmetic takes all captured layers in one block when that fits ``ATTENTION_BUDGET`` elements
(small models: few large ops), else one decoder layer at a time in row chunks under the budget
(large models: bounded memory). SGUF runs once per group of same-shaped image grids (numpy +
scipy on the CPU; the grids are small); the segmentation is a handful of ops for the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor

from kawhi.config import KawhiSettings
from kawhi.method.capture import CapturedQK
from kawhi.method.credit import METRICS, harmonic_weights_batched
from kawhi.method.layout import SampleLayout, visual_layout
from kawhi.method.regions import select_critical_batched
from kawhi.method.segments import batch_segment_ids, decode_pieces, segment_texts

STAT_KEYS = ("weight_mean", "weight_min", "weight_max", "critical_fraction", "n_segments")
ATTENTION_BUDGET = 1 << 26  # elements of one float32 attention block (256 MiB)


@dataclass
class KawhiWeights:
    """Token weights [B, T] (no grad) and, per rollout, the stats training logs and the gallery's inputs.

    ``saliency[i]`` / ``masks[i]`` hold one [h, w] grid per image of rollout i (empty without images);
    ``segments[i]`` / ``segment_weights[i]`` the segment texts and their weights (filled only when
    ``completion_weights(..., with_texts=True)``).
    """

    weights: Tensor
    stats: list[dict[str, float]]
    saliency: list[list[Tensor]] = field(default_factory=list)
    masks: list[list[Tensor]] = field(default_factory=list)
    segments: list[list[str]] = field(default_factory=list)
    segment_weights: list[list[float]] = field(default_factory=list)

    def mean_stats(self) -> dict[str, float]:
        """Batch means of the per-rollout stats, under ``kawhi/<key>`` (what a trainer logs per step)."""
        if not self.stats:
            return {}
        return {f"kawhi/{key}": sum(s[key] for s in self.stats) / len(self.stats) for key in STAT_KEYS}


def image_token_id_and_merge(model_config: Any) -> tuple[int, int]:
    """The image placeholder token id and the vision merge size from a Qwen-VL config."""
    token = getattr(model_config, "image_token_id", None)
    vision = getattr(model_config, "vision_config", None)
    merge = getattr(vision, "spatial_merge_size", None)
    if token is None or merge is None:
        raise ValueError(f"{type(model_config).__name__} lacks image_token_id or vision_config.spatial_merge_size")
    return int(token), int(merge)


@torch.no_grad()
def completion_weights(captured: CapturedQK, input_ids: Tensor, image_grid_thw: Tensor | None,
                       completion_mask: Tensor, completion_ids: Tensor, tokenizer: Any,
                       settings: KawhiSettings, model_config: Any, advantages: Tensor | None = None,
                       seed: int = 0, with_texts: bool = False) -> KawhiWeights:
    """KAWHI token weights for a batch of rollouts (METHOD.md sections 2-5).

    ``captured`` must come from a forward pass over exactly ``input_ids`` (same rows, same order).
    ``advantages`` (the base algorithm's A_i) only matter for ``settings.negative == 'uniform'``.
    ``seed`` seeds the ``random`` region ablation (rollout i uses seed + i).
    """
    if settings.metric not in METRICS:
        raise ValueError(f"kawhi.metric must be one of {METRICS}, got '{settings.metric}'")
    batch, length = input_ids.shape
    width = completion_ids.shape[1]
    if completion_mask.shape != (batch, width):
        raise ValueError(f"completion_mask {tuple(completion_mask.shape)} != completion_ids {(batch, width)}")
    valid = completion_mask.bool()
    weights = torch.ones(batch, width, dtype=torch.float32, device=completion_mask.device)
    if not settings.enabled:  # the base algorithm: nothing is computed (n_segments reported as 0)
        return KawhiWeights(weights, _stats(weights, valid, [0.0] * batch, [0] * batch),
                            [[] for _ in range(batch)], [[] for _ in range(batch)])
    first = captured.q[captured.layers[0]]
    if first.shape[0] != batch or first.shape[2] != length:
        raise ValueError(f"captured q/k cover (batch, length) = {(first.shape[0], first.shape[2])} but input_ids "
                         f"is {(batch, length)}: capture the forward pass over this very batch")
    device = first.device
    token_id, merge = image_token_id_and_merge(model_config)
    layouts = visual_layout(input_ids, image_grid_thw, token_id, merge,
                            prompt_lengths=torch.full((batch,), length - width, dtype=torch.long))

    # Segments of every rollout, as ids 0..S_b-1 on its valid tokens (-1 on padding).
    pieces = decode_pieces(tokenizer, completion_ids)
    seg = batch_segment_ids(pieces, valid, settings.granularity, settings.delimiter)
    n_segments = (seg.max(dim=1).values + 1).tolist()

    visual_rows = [b for b in range(batch) if layouts[b].n_visual]
    saliency_grids: list[list[Tensor]] = [[] for _ in range(batch)]
    mask_grids: list[list[Tensor]] = [[] for _ in range(batch)]
    critical_fraction = [0.0] * batch
    if visual_rows:
        rows = torch.tensor(visual_rows, device=device)
        sub = [layouts[b] for b in visual_rows]
        visual_index, visual_valid = _padded_positions([lay.visual_positions for lay in sub], device)
        question = [lay.question_positions for lay in sub]
        for b, lay in zip(visual_rows, sub):
            if lay.question_positions.numel() == 0:
                raise ValueError(f"row {b}: no question tokens after the last image; KAWHI needs the text prompt "
                                 "after the image")
        question_index, question_valid = _padded_positions(question, device)
        all_rows = len(visual_rows) == batch
        saliency = _saliency(captured, rows, all_rows, visual_index, visual_valid, question_index, question_valid)
        critical, mask_grids, saliency_grids, critical_fraction = _critical_masks(
            saliency.cpu(), visual_rows, sub, settings, seed, batch)
        critical = critical.to(device)

        alignment = _alignment(captured, settings.metric, rows, all_rows, width, visual_index, visual_valid,
                               critical)
        active = torch.tensor([n_segments[b] > 1 for b in visual_rows])
        if settings.negative == "uniform" and advantages is not None:
            active &= advantages.detach().cpu()[visual_rows] >= 0
        if bool(active.any()):
            w_rows = _row_weights(alignment, seg[visual_rows], active, settings)
            weights[visual_rows] = w_rows.to(weights.device, weights.dtype)

    result = KawhiWeights(weights, _stats(weights, valid, critical_fraction, n_segments), saliency_grids, mask_grids)
    if with_texts:
        for b in range(batch):
            ids = seg[b][seg[b] >= 0]
            kept = [p for p, keep in zip(pieces[b], valid[b].tolist()) if keep]
            result.segments.append(segment_texts(kept, ids))
            seg_w = torch.ones(n_segments[b])
            seg_w[ids] = weights[b][valid[b]].cpu()
            result.segment_weights.append(seg_w.tolist())
    return result


def _critical_masks(saliency: Tensor, visual_rows: list[int], layouts: list[SampleLayout],
                    settings: KawhiSettings, seed: int, batch: int):
    """Critical masks of every image, SGUF run once per group of same-shaped grids.

    Returns the flat critical mask per visual row [R, N_max] (visual-token order), and per batch row the
    saliency grids, mask grids and critical fraction."""
    sguf = settings.sguf
    random = settings.regions == "random"
    saliency_grids: list[list[Tensor]] = [[] for _ in range(batch)]
    mask_grids: list[list[Tensor]] = [[] for _ in range(batch)]
    critical_fraction = [0.0] * batch
    shapes = {shape for lay in layouts for shape in lay.grids}
    if len(shapes) == 1 and all(len(lay.grids) == 1 for lay in layouts):
        # the common case, one image of one size per rollout: the rows are the grids
        h, w = shapes.pop()
        grids = saliency[:, : h * w].reshape(-1, h, w)
        generators = [torch.Generator().manual_seed(seed + b) for b in visual_rows] if random else None
        masks = select_critical_batched(grids, settings.regions, sguf.levels, sguf.kappa, sguf.mass,
                                        sguf.max_fraction, generators)
        fractions = (masks.flatten(1).sum(dim=1) / (h * w)).tolist()
        for i, b in enumerate(visual_rows):
            saliency_grids[b], mask_grids[b], critical_fraction[b] = [grids[i]], [masks[i]], fractions[i]
        critical = torch.zeros(len(layouts), saliency.shape[1], dtype=torch.bool)
        critical[:, : h * w] = masks.flatten(1)
        return critical, mask_grids, saliency_grids, critical_fraction

    groups: dict[tuple[int, int], list[tuple[int, int, int]]] = {}  # shape -> (row i, image j, start)
    for i, lay in enumerate(layouts):
        for j, ((start, _), shape) in enumerate(zip(lay.image_slices, lay.grids)):
            groups.setdefault(shape, []).append((i, j, start))
    by_image: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}
    row_generators = {i: torch.Generator().manual_seed(seed + b) for i, b in enumerate(visual_rows)} if random else {}
    for (h, w), members in groups.items():
        stacked = torch.stack([saliency[i, start:start + h * w].view(h, w) for i, _, start in members])
        generators = [row_generators[i] for i, _, _ in members] if random else None
        chosen = select_critical_batched(stacked, settings.regions, sguf.levels, sguf.kappa, sguf.mass,
                                         sguf.max_fraction, generators)
        for (i, j, _), grid, mask in zip(members, stacked, chosen):
            by_image[(i, j)] = (grid, mask)
    critical = torch.zeros(len(layouts), saliency.shape[1], dtype=torch.bool)
    for i, (b, lay) in enumerate(zip(visual_rows, layouts)):
        saliency_grids[b] = [by_image[(i, j)][0] for j in range(len(lay.grids))]
        mask_grids[b] = [by_image[(i, j)][1] for j in range(len(lay.grids))]
        row = torch.cat([m.reshape(-1) for m in mask_grids[b]])
        critical[i, : row.numel()] = row
        critical_fraction[b] = float(row.sum()) / row.numel()
    return critical, mask_grids, saliency_grids, critical_fraction


def _padded_positions(positions: list[Tensor], device: torch.device) -> tuple[Tensor, Tensor]:
    """Ragged position lists -> [R, max] index (0-padded) and validity mask."""
    sizes = {int(p.numel()) for p in positions}
    if len(sizes) == 1:  # the common case (same image size, same prompt template): no padding
        index = torch.stack(positions).to(device)
        return index, torch.ones(index.shape, dtype=torch.bool, device=device)
    longest = max(sizes)
    index = torch.zeros(len(positions), longest, dtype=torch.long)
    present = torch.zeros(len(positions), longest, dtype=torch.bool)
    for i, p in enumerate(positions):
        index[i, : p.numel()] = p.cpu()
        present[i, : p.numel()] = True
    return index.to(device), present.to(device)


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """x [R, H, L, d] at positions index [R, P] -> [R, H, P, d]."""
    r, h, _, d = x.shape
    return x.gather(2, index[:, None, :, None].expand(r, h, index.shape[1], d))


def _qk_blocks(captured: CapturedQK, rows: Tensor, all_rows: bool) -> Iterator[tuple[Tensor, Tensor]]:
    """The captured q, k of the visual rows as float32 [R, H', L, d] blocks: all layers stacked into one
    block when that fits ATTENTION_BUDGET (few large ops for small models), else one block per layer
    (bounded memory for large ones)."""
    first = captured.q[captured.layers[0]]
    stacked_size = first.numel() * len(captured.layers) // first.shape[0] * rows.numel()
    layer_groups = [captured.layers] if stacked_size <= ATTENTION_BUDGET else [(layer,) for layer in captured.layers]
    for group in layer_groups:
        q = torch.cat([captured.q[layer] for layer in group], dim=1) if len(group) > 1 else captured.q[group[0]]
        k = torch.cat([captured.k[layer] for layer in group], dim=1) if len(group) > 1 else captured.k[group[0]]
        if not all_rows:
            q, k = q.index_select(0, rows), k.index_select(0, rows)
        yield q.float(), k.float()


def _row_chunks(rows: int, per_row: int) -> Iterator[slice]:
    step = max(1, ATTENTION_BUDGET // max(per_row, 1))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def _visual_softmax(q: Tensor, k_visual: Tensor, visual_valid: Tensor, scaling: float) -> Tensor:
    """softmax over the (valid) visual keys of q . k * scaling: [R, H, P, N]."""
    scores = torch.matmul(q, k_visual.transpose(-1, -2)) * scaling
    if not bool(visual_valid.all()):
        scores = scores.masked_fill(~visual_valid[:, None, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1)


def _saliency(captured: CapturedQK, rows: Tensor, all_rows: bool, visual_index: Tensor, visual_valid: Tensor,
              question_index: Tensor, question_valid: Tensor) -> Tensor:
    """s_v per row [R, N]: mean over layers, heads and question tokens of the visual-renormalised attention."""
    n_rows, n_visual = visual_index.shape
    total = torch.zeros(n_rows, n_visual, device=visual_index.device)
    q_weight = question_valid.float()[:, None, None, :]  # [R, 1, 1, Q]
    n_heads = 0
    for q, k in _qk_blocks(captured, rows, all_rows):
        n_heads += q.shape[1]
        for part in _row_chunks(n_rows, q.shape[1] * question_index.shape[1] * n_visual):
            attention = _visual_softmax(_gather(q[part], question_index[part]), _gather(k[part], visual_index[part]),
                                        visual_valid[part], captured.scaling)
            total[part] += torch.matmul(q_weight[part], attention).sum(dim=1)[:, 0]
    return total / (question_valid.sum(dim=1, keepdim=True) * n_heads)


def _alignment(captured: CapturedQK, metric: str, rows: Tensor, all_rows: bool, width: int, visual_index: Tensor,
               visual_valid: Tensor, critical: Tensor) -> Tensor:
    """a_t per row and completion token [R, T] (METHOD.md section 4)."""
    n_rows, n_visual = visual_index.shape
    total = torch.zeros(n_rows, width, device=visual_index.device)
    critical_f = critical.float()[:, None, :, None]  # [R, 1, N, 1]
    n_heads = 0
    for q, k in _qk_blocks(captured, rows, all_rows):
        heads = q.shape[1]
        n_heads += heads
        for part in _row_chunks(n_rows, heads * width * n_visual):
            k_visual = _gather(k[part], visual_index[part])
            if metric == "kq":
                attention = _visual_softmax(q[part][:, :, -width:], k_visual, visual_valid[part], captured.scaling)
                total[part] += torch.matmul(attention, critical_f[part]).sum(dim=1)[..., 0]
            else:
                # mean over v in M of cos(k_t, k_v) = k_t_unit . mean of the unit critical keys
                unit = torch.nn.functional.normalize(k_visual, dim=-1) * critical_f[part]
                centre = unit.sum(dim=2, keepdim=True) / critical_f[part].sum(dim=2, keepdim=True)  # [R, H, 1, d]
                k_tokens = torch.nn.functional.normalize(k[part][:, :, -width:], dim=-1)
                cos = torch.matmul(k_tokens, centre.transpose(-1, -2))[..., 0].sum(dim=1)
                total[part] += (heads + cos) / 2.0
    return total / n_heads


def _row_weights(alignment: Tensor, seg: Tensor, active: Tensor, settings: KawhiSettings) -> Tensor:
    """Per-row segment means of the token alignment -> harmonic weights, spread back to tokens [R, T].

    ``seg`` [R, T] (CPU) holds segment ids (-1 on padding); rows not ``active`` get all ones. The
    per-segment arithmetic is [R, S]-sized, so it runs in float64 on the CPU.
    """
    a = alignment.detach().to(device="cpu", dtype=torch.float64).numpy()
    ids = seg.numpy()
    n_rows = ids.shape[0]
    n_max = int(ids.max()) + 1 if ids.size else 0
    slot = np.where(ids >= 0, ids, n_max)  # padding goes to a spare slot, dropped below
    flat = (np.arange(n_rows)[:, None] * (n_max + 1) + slot).ravel()
    sums = np.bincount(flat, weights=a.ravel(), minlength=n_rows * (n_max + 1)).reshape(n_rows, -1)[:, :n_max]
    counts = np.bincount(flat, minlength=n_rows * (n_max + 1)).reshape(n_rows, -1)[:, :n_max]
    means = sums / np.maximum(counts, 1)
    w_seg = harmonic_weights_batched(torch.from_numpy(means), torch.from_numpy(counts), settings.lam,
                                     settings.w_min, settings.w_max, settings.eps).numpy()
    w_tok = np.take_along_axis(w_seg, np.maximum(ids, 0), axis=1)
    return torch.from_numpy(np.where(active.numpy()[:, None] & (ids >= 0), w_tok, 1.0))


def _stats(weights: Tensor, valid: Tensor, critical_fraction: list[float], n_segments: list[int]) -> list[dict]:
    present = valid.any(dim=1)
    masked = torch.where(valid, weights, 0.0)
    mean = torch.where(present, masked.sum(1) / valid.sum(1).clamp(min=1), 1.0).tolist()
    low = torch.where(present, torch.where(valid, weights, float("inf")).min(1).values, 1.0).tolist()
    high = torch.where(present, torch.where(valid, weights, float("-inf")).max(1).values, 1.0).tolist()
    return [{"weight_mean": mean[b], "weight_min": low[b], "weight_max": high[b],
             "critical_fraction": critical_fraction[b], "n_segments": float(max(n_segments[b], 0))}
            for b in range(weights.shape[0])]
