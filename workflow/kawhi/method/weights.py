"""The KAWHI entry point: a batch of rollouts plus its captured q/k -> a [B, T] token-weight tensor.

Batch layout (TRL's): ``input_ids`` = left-padded prompt + right-padded completion, the completion
being the last T positions; ``completion_mask`` is 0 on completion padding. The token advantage is
A_{g,t} = A_g * weights[g, t] (METHOD.md Eq. 17); padding keeps weight 1.

The capture (``kawhi.method.capture``) holds, per captured layer, the response queries (every one of
the last T positions of every row) and the visual keys (per kv head). The alignment runs for the whole
batch in a few tensor ops: the mean unit key of each row's selected visual tokens per kv head
(``index_add`` over the flat key list), expanded to the query heads, then one cosine per response
token and head. Token selection runs per image (``kawhi.method.selection``, cached by content); the
segmentation and the paragraph weights run for the whole batch at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from kawhi.config import KawhiSettings
from kawhi.method.capture import CapturedQK
from kawhi.method.credit import check_weight_settings, cosine_to_centre, mean_unit_keys, padded_paragraph_weights
from kawhi.method.layout import SampleLayout, visual_layout
from kawhi.method.segments import batch_segment_ids, decode_pieces, segment_texts
from kawhi.method.selection import ImageSelection, ImageSelector, attention_selection, received_attention

STAT_KEYS = ("weight_mean", "weight_min", "weight_max", "selected_fraction", "alignment_mean", "n_segments")
NORMALIZE = ("none", "mean")
DEFAULT_SELECTOR = ImageSelector()


@dataclass
class KawhiWeights:
    """Token weights [B, T] (no grad) and, per rollout, the stats training logs and the gallery's inputs.

    ``selections[i]`` holds one ``ImageSelection`` per image of rollout i (empty without images);
    ``segments[i]`` / ``segment_weights[i]`` the segment texts and their weights (filled only when
    ``completion_weights(..., with_texts=True)``).
    """

    weights: Tensor
    stats: list[dict[str, float]]
    selections: list[list[ImageSelection]] = field(default_factory=list)
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


def token_patch(model_config: Any) -> int:
    """Pixels per side of one merged visual token: patch_size x spatial_merge_size (28 for Qwen2.5-VL,
    32 for Qwen3-VL), the SGUF patch."""
    vision = model_config.vision_config
    return int(vision.patch_size) * int(vision.spatial_merge_size)


def capture_masks(input_ids: Tensor, completion_width: int, image_token_id: int, settings: KawhiSettings,
                  image_grid_thw: Tensor | None = None, merge: int = 2) -> tuple[Tensor, Tensor]:
    """(query_mask, key_mask) [B, L] of the positions KAWHI reads: the response queries (all last T
    positions) and the visual keys, plus the response keys for ``metric: kk`` and the question queries
    for ``regions: attention``."""
    batch, length = input_ids.shape
    response = torch.zeros(batch, length, dtype=torch.bool, device=input_ids.device)
    response[:, length - completion_width:] = True
    visual = input_ids == image_token_id
    query_mask = response.clone()
    if settings.regions == "attention":
        prompt = torch.full((batch,), length - completion_width, dtype=torch.long)
        for b, layout in enumerate(visual_layout(input_ids, image_grid_thw, image_token_id, merge, prompt)):
            query_mask[b, layout.question_positions] = True
    key_mask = visual | response if settings.metric == "kk" else visual
    return query_mask, key_mask


@torch.no_grad()
def completion_weights(captured: CapturedQK, input_ids: Tensor, image_grid_thw: Tensor | None,
                       images: Sequence[np.ndarray] | None, completion_mask: Tensor, completion_ids: Tensor,
                       tokenizer: Any, settings: KawhiSettings, model_config: Any, seed: int = 0,
                       with_texts: bool = False, selector: ImageSelector = DEFAULT_SELECTOR) -> KawhiWeights:
    """KAWHI token weights for a batch of rollouts (METHOD.md sections 2-5).

    ``captured`` must come from a forward over exactly ``input_ids`` with ``capture_masks``' positions;
    ``images`` are the batch's images as the processor resized them ([H, W, 3] uint8, one per row of
    ``image_grid_thw``; ``kawhi.method.pixels`` rebuilds them), needed by every ``regions`` mode that
    runs SGUF. ``seed`` is the config seed (SGUF's background draw mixes it with the image content).
    """
    if settings.normalize not in NORMALIZE:
        raise ValueError(f"kawhi.normalize must be one of {NORMALIZE}, got '{settings.normalize}'")
    check_weight_settings(settings.tau, settings.lam, settings.w_min, settings.w_max)
    batch, length = input_ids.shape
    width = completion_ids.shape[1]
    if completion_mask.shape != (batch, width):
        raise ValueError(f"completion_mask {tuple(completion_mask.shape)} != completion_ids {(batch, width)}")
    valid = completion_mask.bool().cpu()
    weights = torch.ones(batch, width, dtype=torch.float32)
    if not settings.enabled:  # the base algorithm: nothing is computed
        return KawhiWeights(weights, _stats(weights, valid, torch.zeros(batch, width), [0.0] * batch, [0] * batch),
                            [[] for _ in range(batch)])
    if tuple(captured.query_mask.shape) != (batch, length):
        raise ValueError(f"captured q/k cover (batch, length) = {tuple(captured.query_mask.shape)} but input_ids is "
                         f"{(batch, length)}: capture the forward pass over this very batch")
    token_id, merge = image_token_id_and_merge(model_config)
    layouts = visual_layout(input_ids.cpu(), image_grid_thw, token_id, merge,
                            prompt_lengths=torch.full((batch,), length - width, dtype=torch.long))

    if settings.regions == "attention":
        selections = _attention_selections(captured, layouts, settings, length - width)
    else:
        selections = _image_selections(images, layouts, image_grid_thw, token_patch(model_config), settings, seed,
                                       selector)
    selected = torch.from_numpy(np.concatenate(
        [sel.selected.reshape(-1) for row in selections for sel in row] or [np.zeros(0, dtype=bool)]))
    alpha = batch_alignment(captured, length - width, selected, settings.metric).cpu()  # [B, T]

    pieces = decode_pieces(tokenizer, completion_ids)
    seg = batch_segment_ids(pieces, valid, settings.granularity, settings.delimiter)
    weights = _token_weights(alpha, seg, settings)
    n_segments = (seg.max(dim=1).values + 1).tolist()
    fractions = _selected_fractions(selections)
    result = KawhiWeights(weights, _stats(weights, valid, alpha, fractions, n_segments), selections)
    if with_texts:
        for b in range(batch):
            ids = seg[b][seg[b] >= 0]
            kept = [p for p, keep in zip(pieces[b], valid[b].tolist()) if keep]
            result.segments.append(segment_texts(kept, ids))
            seg_w = torch.ones(n_segments[b])
            seg_w[ids] = weights[b][valid[b]]
            result.segment_weights.append(seg_w.tolist())
    return result


def _image_selections(images: Sequence[np.ndarray] | None, layouts: list[SampleLayout],
                      image_grid_thw: Tensor | None, patch: int, settings: KawhiSettings, seed: int,
                      selector: ImageSelector) -> list[list[ImageSelection]]:
    """Each row's images through ``kawhi.regions`` (SGUF and its ablations), checked against the token grid."""
    n_images = 0 if image_grid_thw is None else int(image_grid_thw.shape[0])
    if n_images and (images is None or len(images) != n_images):
        raise ValueError(f"regions '{settings.regions}' needs the batch's {n_images} images, got "
                         f"{0 if images is None else len(images)}")
    out: list[list[ImageSelection]] = []
    index = 0
    same: dict[int, ImageSelection] = {}  # id(image) -> its selection: rows sharing one image array ask once
    for b, layout in enumerate(layouts):
        row = []
        for grid in layout.grids:
            image = images[index]
            if (image.shape[0] // patch, image.shape[1] // patch) != grid or image.shape[0] % patch:
                raise ValueError(f"row {b}: image {index} is {image.shape[1]}x{image.shape[0]} pixels, which is not the "
                                 f"{grid[1]}x{grid[0]} token grid of {patch}-pixel patches the model saw (pass the "
                                 "processor-resized image; multi-frame inputs are not supported)")
            selection = same.get(id(image))
            if selection is None:
                selection = same[id(image)] = selector(image, patch, settings, seed)
            row.append(selection)
            index += 1
        out.append(row)
    return out


def _selected_fractions(selections: list[list[ImageSelection]]) -> list[float]:
    """Per row, the share of its visual tokens that are selected (rows with the same selections, as a
    prompt's rollouts share their image's, are computed once)."""
    done: dict[tuple[int, ...], float] = {}
    out = []
    for row in selections:
        key = tuple(id(sel) for sel in row)
        if key not in done:  # the mean of the flags: an exact count over an exact size, one rounding as np.mean's
            done[key] = (sum(int(np.count_nonzero(sel.selected)) for sel in row)
                         / sum(int(sel.selected.size) for sel in row)) if row else 0.0
        out.append(done[key])
    return out


def _attention_selections(captured: CapturedQK, layouts: list[SampleLayout], settings: KawhiSettings,
                          prompt_width: int) -> list[list[ImageSelection]]:
    """``regions: attention``: per image, the tokens that receive the most attention from the question."""
    out: list[list[ImageSelection]] = []
    for b, layout in enumerate(layouts):
        if not layout.n_visual:
            out.append([])
            continue
        row = captured.row(b)
        question = torch.isin(row.q_positions, layout.question_positions.to(row.q_positions.device))
        if not bool(question.any()):
            raise ValueError(f"row {b}: no question tokens after the last image; regions 'attention' needs them")
        visual = row.k_positions < prompt_width
        received = received_attention(row.q[question], row.k[visual], captured.scaling)
        sizes = [h * w for h, w in layout.grids]
        chosen = attention_selection(received, sizes, settings.attention_fraction).numpy()
        starts = np.cumsum([0] + sizes)
        out.append([ImageSelection(chosen[s:e].reshape(grid), None)
                    for s, e, grid in zip(starts[:-1], starts[1:], layout.grids)])
    return out


def batch_alignment(captured: CapturedQK, prompt_width: int, selected: Tensor, metric: str = "kq") -> Tensor:
    """alpha [B, T] for every row at once (``credit.alignment`` row by row, averaged over captured layers).

    ``selected`` [n_visual_total] flags the visual keys in capture order (row-major over rows, then
    positions). A row without selected visual tokens gets alpha = 0.
    """
    if metric not in ("kq", "kk"):
        raise ValueError(f"kawhi.metric must be one of ('kq', 'kk'), got '{metric}'")
    batch = captured.batch_size
    key_rows, key_pos = captured.key_mask.nonzero(as_tuple=True)
    query_pos = captured.query_mask.nonzero(as_tuple=True)[1]
    is_visual = key_pos < prompt_width
    is_response = query_pos >= prompt_width
    width = captured.query_mask.shape[1] - prompt_width
    n_response, n_visual = (int(n) for n in torch.stack([is_response.sum(), is_visual.sum()]).tolist())
    if n_response != batch * width:
        raise ValueError("the capture must hold the query of every response position (see capture_masks)")
    if n_visual != selected.numel():
        raise ValueError(f"{selected.numel()} selection flags for {n_visual} captured visual keys")
    # capture_masks' default positions hold only response queries and only visual keys: no gather needed
    all_visual, all_response = n_visual == key_pos.numel(), n_response == query_pos.numel()
    visual_rows = key_rows if all_visual else key_rows[is_visual]
    total = None
    for layer in captured.layers:
        q, k = captured.q[layer], captured.k[layer]
        kv_index = captured.kv_index.to(k.device)
        k_visual = k if all_visual else k[is_visual.to(k.device)]
        centre = mean_unit_keys(k_visual, visual_rows, selected, batch).index_select(1, kv_index)
        if metric == "kq":
            probe = (q if all_response else q[is_response.to(q.device)]).reshape(batch, width, *q.shape[1:])
        else:
            probe = k[~is_visual.to(k.device)].view(batch, width, *k.shape[1:]).index_select(2, kv_index)
        cos = cosine_to_centre(probe, centre.to(probe.device))  # [B, T]
        total = cos if total is None else total + cos
    return total / len(captured.layers)


def _token_weights(alpha: Tensor, seg: Tensor, settings: KawhiSettings) -> Tensor:
    """Paragraph means of alpha -> Eq. 15 per row -> each token's paragraph weight [B, T] (1 on padding)."""
    batch, width = seg.shape
    valid = seg >= 0
    n_max = int(seg.max()) + 1 if bool(valid.any()) else 0
    if n_max == 0:
        return torch.ones(batch, width)
    slot = torch.where(valid, seg, n_max) + torch.arange(batch)[:, None] * (n_max + 1)  # padding: a spare slot
    size = batch * (n_max + 1)
    sums = torch.zeros(size, dtype=torch.float64).index_add_(0, slot.ravel(), alpha.double().ravel())
    counts = torch.bincount(slot.ravel(), minlength=size).double()
    sums, counts = sums.view(batch, -1)[:, :n_max], counts.view(batch, -1)[:, :n_max]
    w_seg = padded_paragraph_weights(sums / counts.clamp(min=1), counts > 0, tau=settings.tau, lam=settings.lam,
                                     w_min=settings.w_min, w_max=settings.w_max)
    w_tok = torch.where(valid, w_seg.gather(1, seg.clamp(min=0)), 1.0)
    if settings.normalize == "mean":  # ours: token-weighted mean 1 over each response
        mean = (w_tok * valid).sum(dim=1, keepdim=True) / valid.sum(dim=1, keepdim=True).clamp(min=1)
        w_tok = torch.where(valid, w_tok / mean, 1.0)
    return w_tok.float()


def _stats(weights: Tensor, valid: Tensor, alpha: Tensor, selected_fraction: list[float],
           n_segments: list[int]) -> list[dict[str, float]]:
    present = valid.any(dim=1)
    count = valid.sum(1).clamp(min=1)
    mean = torch.where(present, torch.where(valid, weights, 0.0).sum(1) / count, 1.0).tolist()
    low = torch.where(present, torch.where(valid, weights, float("inf")).min(1).values, 1.0).tolist()
    high = torch.where(present, torch.where(valid, weights, float("-inf")).max(1).values, 1.0).tolist()
    align = (torch.where(valid, alpha.float(), 0.0).sum(1) / count).tolist()
    return [{"weight_mean": mean[b], "weight_min": low[b], "weight_max": high[b],
             "selected_fraction": selected_fraction[b], "alignment_mean": align[b],
             "n_segments": float(max(n_segments[b], 0))} for b in range(weights.shape[0])]
