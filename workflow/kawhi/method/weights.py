"""The KAWHI entry point: a batch of rollouts plus its captured q/k -> a [B, T] token-weight tensor.

Batch layout (TRL's): ``input_ids`` = left-padded prompt + right-padded completion, the completion
being the last T positions; ``completion_mask`` is 0 on completion padding. The token advantage is
A_{i,t} = A_i * weights[i, t]; the weights are 1.0 on padding and wherever METHOD.md says w = 1.

The attention arithmetic runs for the whole batch at once, one decoder layer at a time (so the
[B, H*, T, N] attention block of a single layer is the largest temporary, further cut into row
chunks under ``ATTENTION_BUDGET`` elements); only SGUF, which is a per-image graph algorithm on a
small grid, and the per-row text segmentation loop over rollouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import Tensor

from kawhi.config import KawhiSettings
from kawhi.method.capture import CapturedQK
from kawhi.method.credit import METRICS, harmonic_weights_batched
from kawhi.method.layout import SampleLayout, visual_layout
from kawhi.method.regions import select_critical
from kawhi.method.segments import decode_pieces, segment_ids, segment_texts

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
    if not settings.enabled:
        return KawhiWeights(weights, _stats(weights, valid, [0.0] * batch, [1] * batch),
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
    valid_rows = valid.cpu().tolist()
    seg = torch.full((batch, width), -1, dtype=torch.long)
    kept_pieces = []
    for b in range(batch):
        kept = [p for p, keep in zip(pieces[b], valid_rows[b]) if keep]
        kept_pieces.append(kept)
        seg[b, valid[b].cpu()] = segment_ids(kept, settings.granularity, settings.delimiter)
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
        saliency = _saliency(captured, rows, visual_index, visual_valid, question_index, question_valid)
        critical = torch.zeros_like(visual_valid)
        saliency_cpu = saliency.cpu()
        for i, (b, lay) in enumerate(zip(visual_rows, sub)):
            generator = torch.Generator().manual_seed(seed + b)
            for (start, end), (h, w) in zip(lay.image_slices, lay.grids):
                grid = saliency_cpu[i, start:end].view(h, w)
                chosen = select_critical(grid, settings.regions, settings.sguf.levels, settings.sguf.kappa,
                                         settings.sguf.mass, settings.sguf.max_fraction, generator)
                saliency_grids[b].append(grid)
                mask_grids[b].append(chosen)
            row_mask = torch.cat([m.reshape(-1) for m in mask_grids[b]])
            critical[i, : row_mask.numel()] = row_mask.to(device)
            critical_fraction[b] = float(row_mask.float().mean())

        alignment = _alignment(captured, settings.metric, rows, width, visual_index, visual_valid, critical)
        active = torch.tensor([n_segments[b] > 1 for b in visual_rows])
        if settings.negative == "uniform" and advantages is not None:
            active &= advantages.detach().cpu()[visual_rows] >= 0
        if bool(active.any()):
            rows_seg = seg[visual_rows].to(device)
            w_rows = _row_weights(alignment, rows_seg, settings)
            w_rows = torch.where(active.to(device)[:, None] & (rows_seg >= 0), w_rows, 1.0)
            weights[visual_rows] = w_rows.to(weights.device, weights.dtype)

    result = KawhiWeights(weights, _stats(weights, valid, critical_fraction, n_segments), saliency_grids, mask_grids)
    if with_texts:
        for b in range(batch):
            ids = seg[b][seg[b] >= 0]
            result.segments.append(segment_texts(kept_pieces[b], ids))
            seg_w = torch.ones(n_segments[b])
            seg_w[ids] = weights[b][valid[b]].cpu()
            result.segment_weights.append(seg_w.tolist())
    return result


def _padded_positions(positions: list[Tensor], device: torch.device) -> tuple[Tensor, Tensor]:
    """Ragged position lists -> [R, max] index (0-padded) and validity mask."""
    longest = max(int(p.numel()) for p in positions)
    index = torch.zeros(len(positions), longest, dtype=torch.long)
    present = torch.zeros(len(positions), longest, dtype=torch.bool)
    for i, p in enumerate(positions):
        index[i, : p.numel()] = p.cpu()
        present[i, : p.numel()] = True
    return index.to(device), present.to(device)


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """x [R, H, L, d] at positions index [R, P] -> [R, H, P, d] (float32)."""
    r, h, _, d = x.shape
    return x.gather(2, index[:, None, :, None].expand(r, h, index.shape[1], d)).float()


def _row_chunks(rows: int, per_row: int) -> Iterator[slice]:
    step = max(1, ATTENTION_BUDGET // max(per_row, 1))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def _visual_softmax(q: Tensor, k_visual: Tensor, visual_valid: Tensor, scaling: float) -> Tensor:
    """softmax over the (valid) visual keys of q . k * scaling: [R, H, P, N]."""
    scores = torch.matmul(q, k_visual.transpose(-1, -2)) * scaling
    return torch.softmax(scores.masked_fill(~visual_valid[:, None, None, :], float("-inf")), dim=-1)


def _saliency(captured: CapturedQK, rows: Tensor, visual_index: Tensor, visual_valid: Tensor,
              question_index: Tensor, question_valid: Tensor) -> Tensor:
    """s_v per row [R, N]: mean over layers, heads and question tokens of the visual-renormalised attention."""
    n_rows, n_visual = visual_index.shape
    total = torch.zeros(n_rows, n_visual, device=visual_index.device)
    q_weight = question_valid.float()
    for layer in captured.layers:
        q_layer, k_layer = captured.q[layer].index_select(0, rows), captured.k[layer].index_select(0, rows)
        heads = q_layer.shape[1]
        for part in _row_chunks(n_rows, heads * question_index.shape[1] * n_visual):
            attention = _visual_softmax(_gather(q_layer[part], question_index[part]),
                                        _gather(k_layer[part], visual_index[part]), visual_valid[part],
                                        captured.scaling)
            total[part] += torch.einsum("rhpn,rp->rn", attention, q_weight[part])
    n_heads = captured.q[captured.layers[0]].shape[1]
    return total / (q_weight.sum(dim=1, keepdim=True) * n_heads * len(captured.layers))


def _alignment(captured: CapturedQK, metric: str, rows: Tensor, width: int, visual_index: Tensor,
               visual_valid: Tensor, critical: Tensor) -> Tensor:
    """a_t per row and completion token [R, T] (METHOD.md section 4)."""
    n_rows, n_visual = visual_index.shape
    total = torch.zeros(n_rows, width, device=visual_index.device)
    critical_f = critical.float()
    for layer in captured.layers:
        q_layer, k_layer = captured.q[layer].index_select(0, rows), captured.k[layer].index_select(0, rows)
        heads = q_layer.shape[1]
        for part in _row_chunks(n_rows, heads * width * n_visual):
            k_visual = _gather(k_layer[part], visual_index[part])
            if metric == "kq":
                attention = _visual_softmax(q_layer[part][:, :, -width:].float(), k_visual, visual_valid[part],
                                            captured.scaling)
                total[part] += torch.einsum("rhtn,rn->rt", attention, critical_f[part])
            else:
                # mean over v in M of cos(k_t, k_v) = k_t_unit . mean of the unit critical keys
                unit = torch.nn.functional.normalize(k_visual, dim=-1) * critical_f[part][:, None, :, None]
                centre = unit.sum(dim=2) / critical_f[part].sum(dim=1)[:, None, None]
                k_tokens = torch.nn.functional.normalize(k_layer[part][:, :, -width:].float(), dim=-1)
                cos = torch.einsum("rhtd,rhd->rt", k_tokens, centre)
                total[part] += (heads + cos) / 2.0
    n_heads = captured.q[captured.layers[0]].shape[1]
    return total / (n_heads * len(captured.layers))


def _row_weights(alignment: Tensor, seg: Tensor, settings: KawhiSettings) -> Tensor:
    """Per-row segment means of the token alignment -> harmonic weights, spread back to tokens [R, T]."""
    n_rows, width = seg.shape
    n_max = int(seg.max()) + 1 if seg.numel() else 0
    slot = torch.where(seg >= 0, seg, n_max)  # padding goes to a spare slot, dropped below
    sums = torch.zeros(n_rows, n_max + 1, dtype=torch.float64, device=seg.device)
    sums.scatter_add_(1, slot, alignment.to(torch.float64))
    counts = torch.zeros(n_rows, n_max + 1, dtype=torch.long, device=seg.device)
    counts.scatter_add_(1, slot, torch.ones_like(slot))
    sums, counts = sums[:, :n_max], counts[:, :n_max]
    means = sums / counts.clamp(min=1)
    w_seg = harmonic_weights_batched(means, counts, settings.lam, settings.w_min, settings.w_max, settings.eps)
    return w_seg.gather(1, seg.clamp(min=0))


def _stats(weights: Tensor, valid: Tensor, critical_fraction: list[float], n_segments: list[int]) -> list[dict]:
    present = valid.any(dim=1)
    masked = torch.where(valid, weights, 0.0)
    mean = torch.where(present, masked.sum(1) / valid.sum(1).clamp(min=1), 1.0).tolist()
    low = torch.where(present, torch.where(valid, weights, float("inf")).min(1).values, 1.0).tolist()
    high = torch.where(present, torch.where(valid, weights, float("-inf")).max(1).values, 1.0).tolist()
    return [{"weight_mean": mean[b], "weight_min": low[b], "weight_max": high[b],
             "critical_fraction": critical_fraction[b], "n_segments": float(max(n_segments[b], 0))}
            for b in range(weights.shape[0])]
