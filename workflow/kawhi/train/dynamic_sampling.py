"""DAPO's dynamic sampling for TRL's GRPOTrainer (TRL lacks it: trl#3708, trl#4764).

A group whose completions all earn the same reward has zero advantage everywhere, so it adds nothing
to the policy gradient but still dilutes the batch. Dynamic sampling drops such groups and refills the
batch with groups generated from further prompts, up to ``dynamic_sampling_max_tries`` generation
rounds per step. If the rounds run out, the batch is topped up with dropped groups (zero advantage, so
they change no gradient) to keep TRL's fixed batch shape; the metrics say how often that happens.

The pieces:
- ``zero_variance_groups``: which groups of a reward vector all agree (pure, tested on known groups).
- ``select_rows`` / ``concat_batches``: pick rows of TRL's generation output and merge outputs of
  several rounds, re-padding prompts (left) and completions (right).
- ``DynamicSamplingMixin``: overrides ``_generate_and_score_completions`` (the smallest hook TRL
  offers: every later stage consumes its output dict) and ``_calculate_rewards`` (to see rewards).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import torch
from torch import Tensor

log = logging.getLogger(__name__)

# Keys of TRL's generation output, by how their rows are laid out.
_PROMPT_ALIGNED = {"prompt_ids": "pad", "prompt_mask": 0}  # left padded
_COMPLETION_ALIGNED = {"completion_ids": "pad", "completion_mask": 0, "tool_mask": 1, "old_per_token_logps": 0.0,
                       "ref_per_token_logps": 0.0, "sampling_per_token_logps": 0.0,
                       "importance_sampling_ratio": 1.0, "advantages": 0.0}  # right padded (when 2-D)
_SEQUENCE_ALIGNED = ("token_type_ids", "mm_token_type_ids")  # prompt part left padded + completion part
_PER_IMAGE = ("pixel_values", "image_grid_thw", "image_position_ids", "image_sizes")
_SCALAR = ("num_items_in_batch",)


def zero_variance_groups(rewards: Tensor, num_generations: int, atol: float = 1e-6) -> Tensor:
    """Bool per group: True where every (non-NaN) reward of the group agrees within ``atol``.

    ``rewards`` is [n_groups * num_generations] with each group's completions contiguous (TRL's
    RepeatSampler layout). A group whose rewards are all NaN (unscorable) also counts as agreeing.
    """
    if rewards.dim() != 1 or rewards.numel() % num_generations:
        raise ValueError(f"rewards of shape {tuple(rewards.shape)} do not split into groups of {num_generations}")
    grouped = rewards.view(-1, num_generations).float()
    finite = ~torch.isnan(grouped)
    high = torch.where(finite, grouped, torch.full_like(grouped, -torch.inf)).max(dim=1).values
    low = torch.where(finite, grouped, torch.full_like(grouped, torch.inf)).min(dim=1).values
    spread = torch.where(finite.any(dim=1), high - low, torch.zeros_like(high))
    return spread <= atol


def _images_per_row(batch: dict[str, Any]) -> list[int] | None:
    return list(batch["num_images"]) if batch.get("num_images") is not None else None


def _per_image_rows(batch: dict[str, Any], key: str) -> list[Tensor]:
    """``batch[key]`` split into one tensor per sample (pixel rows follow image_grid_thw for Qwen-VL)."""
    value = batch[key]
    counts = _images_per_row(batch)
    if counts is None:
        raise ValueError(f"generation output has '{key}' but no 'num_images'")
    if key == "pixel_values" and batch.get("image_grid_thw") is not None:
        lengths = batch["image_grid_thw"].prod(-1).tolist()
        bounds = [0]
        for c in counts:
            bounds.append(bounds[-1] + c)
        sections = [sum(lengths[bounds[i]:bounds[i + 1]]) for i in range(len(counts))]
        return list(torch.split(value, sections, dim=0))
    return list(torch.split(value, counts, dim=0))


def select_rows(batch: dict[str, Any], rows: Sequence[int]) -> dict[str, Any]:
    """The rows ``rows`` (sample indices) of one TRL generation output, per-image tensors included."""
    rows = list(rows)
    index = torch.tensor(rows, dtype=torch.long)
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if value is None or key in _SCALAR:
            out[key] = value
        elif key in _PER_IMAGE:
            per_row = _per_image_rows(batch, key)
            picked = [per_row[r] for r in rows]
            out[key] = torch.cat(picked, dim=0) if picked else value[:0]
        elif isinstance(value, Tensor):
            out[key] = value.index_select(0, index.to(value.device)) if value.dim() > 0 else value
        elif isinstance(value, list):
            out[key] = [value[r] for r in rows]
        else:
            out[key] = value
    return out


def _pad_to(t: Tensor, width: int, value: float, left: bool) -> Tensor:
    missing = width - t.shape[1]
    if missing <= 0:
        return t
    filler = torch.full((t.shape[0], missing, *t.shape[2:]), value, dtype=t.dtype, device=t.device)
    return torch.cat([filler, t] if left else [t, filler], dim=1)


def concat_batches(batches: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """Merge TRL generation outputs row-wise, re-padding prompts on the left and completions on the right.

    ``num_items_in_batch`` is dropped: the caller recounts it over the merged batch (it is a global
    count across processes).
    """
    batches = [b for b in batches if b is not None]
    if not batches:
        raise ValueError("concat_batches needs at least one batch")
    keys = [k for k in batches[0] if k not in _SCALAR]
    for b in batches[1:]:
        other = {k for k in b if k not in _SCALAR}
        if other != set(keys):
            raise ValueError(f"generation outputs differ in keys: {sorted(other ^ set(keys))}")
    prompt_width = max(b["prompt_ids"].shape[1] for b in batches)
    completion_width = max(b["completion_ids"].shape[1] for b in batches)
    out: dict[str, Any] = {}
    for key in keys:
        values = [b[key] for b in batches]
        if values[0] is None or key in _SCALAR:
            continue
        if key in _PROMPT_ALIGNED:
            fill = pad_token_id if _PROMPT_ALIGNED[key] == "pad" else _PROMPT_ALIGNED[key]
            out[key] = torch.cat([_pad_to(v, prompt_width, fill, left=True) for v in values])
        elif key in _COMPLETION_ALIGNED and values[0].dim() == 2 and all(
                v.shape[1] == b["completion_ids"].shape[1] for b, v in zip(batches, values)):
            # token-level (B, T) tensors; sequence-level (B, 1) ones fall through to a plain concat
            fill = pad_token_id if _COMPLETION_ALIGNED[key] == "pad" else _COMPLETION_ALIGNED[key]
            out[key] = torch.cat([_pad_to(v, completion_width, fill, left=False) for v in values])
        elif key in _SEQUENCE_ALIGNED:
            parts = []
            for b, v in zip(batches, values):
                p = b["prompt_ids"].shape[1]
                prompt_part = _pad_to(v[:, :p], prompt_width, 0, left=True)
                completion_part = _pad_to(v[:, p:], completion_width, 0, left=False)
                parts.append(torch.cat([prompt_part, completion_part], dim=1))
            out[key] = torch.cat(parts)
        elif isinstance(values[0], Tensor):
            out[key] = torch.cat(values) if values[0].dim() > 0 else values[0]
        elif isinstance(values[0], list):
            out[key] = [x for v in values for x in v]
        else:
            out[key] = values[0]
    return out


class DynamicSamplingMixin:
    """Mix in before ``GRPOTrainer``; active when ``self.dynamic_sampling`` is True.

    Expects ``self.dynamic_sampling_max_tries`` (>= 1). Logs per step ``dynamic_sampling/kept_groups``,
    ``dynamic_sampling/filtered_groups`` (zero-variance groups dropped over all rounds),
    ``dynamic_sampling/tries`` and ``dynamic_sampling/topped_up_groups``.
    """

    dynamic_sampling: bool = False
    dynamic_sampling_max_tries: int = 3

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):  # noqa: D401 (TRL hook)
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        weights = self.reward_weights.to(rewards_per_func.device).unsqueeze(0)
        total = (rewards_per_func * weights).nansum(dim=1)
        total[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan
        start = self.accelerator.process_index * len(prompts)
        self._last_local_rewards = total[start:start + len(prompts)].detach().cpu()
        return rewards_per_func

    def _refill_inputs(self, n_groups: int, attempt: int) -> list[dict[str, Any]]:
        """``n_groups`` fresh prompts, each repeated ``num_generations`` times (TRL's group layout).

        The draw is seeded by (seed, global step, attempt), so a resumed run refills exactly as the
        uninterrupted one would.
        """
        dataset = self.train_dataset
        generator = torch.Generator().manual_seed(
            int(self.args.seed) * 1_000_003 + int(self.state.global_step) * 7919 + attempt * 104_729
            + int(self.accelerator.process_index))
        picks = torch.randint(len(dataset), (n_groups,), generator=generator).tolist()
        rows = []
        for i in picks:
            row = dataset[int(i)]
            rows.extend(dict(row) for _ in range(self.num_generations))
        return rows

    def _generate_and_score_completions(self, inputs):
        mode = "train" if self.model.training else "eval"
        if not (self.dynamic_sampling and mode == "train"):
            return super()._generate_and_score_completions(inputs)
        g = self.num_generations
        if len(inputs) % g:
            raise ValueError(f"dynamic sampling needs whole groups per process: local generation batch {len(inputs)} "
                             f"is not a multiple of num_generations={g}")
        need = len(inputs) // g
        kept: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        n_kept = n_filtered = tries = 0
        batch_inputs = inputs
        for attempt in range(max(1, int(self.dynamic_sampling_max_tries))):
            tries += 1
            output = super()._generate_and_score_completions(batch_inputs)
            zero = zero_variance_groups(self._last_local_rewards, g)
            keep_rows = [r for grp in range(zero.numel()) if not zero[grp] for r in range(grp * g, (grp + 1) * g)]
            drop_rows = [r for grp in range(zero.numel()) if zero[grp] for r in range(grp * g, (grp + 1) * g)]
            take = keep_rows[: (need - n_kept) * g]
            if take:
                kept.append(select_rows(output, take))
            if drop_rows:
                dropped.append(select_rows(output, drop_rows))
            n_kept += len(take) // g
            n_filtered += len(drop_rows) // g
            # every process must run the same number of rounds (generation and reward gathers are collective)
            missing = torch.tensor([need - n_kept], device=self.accelerator.device)
            if self.accelerator.gather(missing).max().item() <= 0:
                break
            batch_inputs = self._refill_inputs(max(need - n_kept, 1), attempt)
        topped_up = need - n_kept
        if topped_up > 0:
            pool = concat_batches(dropped, self._tokenizer.pad_token_id)
            kept.append(select_rows(pool, range(topped_up * g)))
        merged = concat_batches(kept, self._tokenizer.pad_token_id)
        loss_mask = merged["completion_mask"] * merged["tool_mask"] if "tool_mask" in merged else merged["completion_mask"]
        merged["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        metrics = self._metrics[mode]
        metrics["dynamic_sampling/kept_groups"].append(float(n_kept))
        metrics["dynamic_sampling/filtered_groups"].append(float(n_filtered))
        metrics["dynamic_sampling/tries"].append(float(tries))
        metrics["dynamic_sampling/topped_up_groups"].append(float(max(topped_up, 0)))
        log.debug("dynamic sampling: kept %d groups, filtered %d, %d tries, topped up %d", n_kept, n_filtered, tries,
                  max(topped_up, 0))
        return merged
