"""DAPO's dynamic sampling for TRL's GRPOTrainer (TRL lacks it: trl#3708, trl#4764).

A group whose completions all earn the same reward has zero advantage everywhere, so it adds nothing
to the policy gradient but still dilutes the batch. Dynamic sampling drops such groups and refills the
batch with groups generated from further prompts, up to ``dynamic_sampling_max_tries`` generation
rounds per step. If the rounds run out, the batch is topped up with dropped groups (zero advantage, so
they change no gradient) to keep TRL's fixed batch shape; the metrics say how often that happens.

Across processes every decision is global, so all ranks take it alike and it does not depend on how
many ranks there are. TRL gathers every round's rewards to all ranks, so each rank sees the same
global reward vector and keeps or drops the same global groups, in the same order, without another
collective. Every round has the shape of the first (each rank generates as many groups as the step
asked of it: DAPO's reference implementation also generates whole batches), so TRL's gathers always
see equal shapes and its ``process_index * len(prompts)`` slice picks each rank's own advantages.
Refill prompts come from one draw seeded by (seed, step, round) that each rank slices. The final
batch is the first ``need`` kept groups in global order (plus top-ups), and rank r trains on its r-th
share of it; groups generated on another rank are sent over (``gather_object``) only when needed.
A one-process run with the same global batch therefore keeps the same groups in the same order.

The pieces:
- ``zero_variance_groups``: which groups of a reward vector all agree (pure, tested on known groups).
- ``RefillPlan``: which global groups the step keeps, tops up and hands to which rank (pure).
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

GroupId = tuple[int, int]  # (generation round, group index in that round's global batch)

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


class RefillPlan:
    """Which global groups one step trains on, and which rank trains on each (the same on every rank).

    ``need`` is the step's number of groups over all ranks. Rounds are added in order, each as the
    zero-variance flags of its global batch (rank-major: TRL's gather layout, so group j of a round
    was generated on rank ``j // groups_per_rank``). The step trains on the first ``need`` groups with
    mixed rewards in (round, group) order, then, if the rounds ran out, on the first dropped groups.
    """

    def __init__(self, need: int) -> None:
        if need < 1:
            raise ValueError(f"a step needs at least one group, got {need}")
        self.need = need
        self.kept: list[GroupId] = []
        self.dropped: list[GroupId] = []  # the first `need` zero-variance groups: the top-up candidates
        self.filtered = 0  # every zero-variance group of every round
        self.rounds = 0

    def add_round(self, zero: Tensor) -> list[GroupId]:
        """Take one round's flags; return the groups it added to ``kept`` or ``dropped`` (the rows to hold)."""
        added = []
        for j, agree in enumerate(zero.tolist()):
            group = (self.rounds, j)
            if agree:
                self.filtered += 1
                if len(self.dropped) < self.need:
                    self.dropped.append(group)
                    added.append(group)
            elif len(self.kept) < self.need:
                self.kept.append(group)
                added.append(group)
        self.rounds += 1
        return added

    @property
    def full(self) -> bool:
        return len(self.kept) >= self.need

    @property
    def topped_up(self) -> int:
        return self.need - len(self.kept)

    def final(self) -> list[GroupId]:
        """The step's groups in batch order: kept groups, then top-ups."""
        return self.kept + self.dropped[: self.topped_up]

    def shares(self, world: int) -> list[list[GroupId]]:
        """Rank r's groups: the r-th equal slice of ``final()``."""
        if self.need % world:
            raise ValueError(f"{self.need} groups do not split evenly over {world} processes")
        per_rank = self.need // world
        final = self.final()
        return [final[r * per_rank:(r + 1) * per_rank] for r in range(world)]

    def moves(self, world: int) -> dict[GroupId, int]:
        """Groups that another rank trains on than the one that generated them: group -> receiving rank."""
        per_rank = self.need // world
        return {group: r for r, share in enumerate(self.shares(world)) for group in share
                if group[1] // per_rank != r}


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


def _to_device(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}


class DynamicSamplingMixin:
    """Mix in before ``GRPOTrainer``; active when ``self.dynamic_sampling`` is True.

    Expects ``self.dynamic_sampling_max_tries`` (>= 1). Logs per step, over all processes:
    ``dynamic_sampling/kept_groups`` (groups with mixed rewards in the batch),
    ``dynamic_sampling/filtered_groups`` (zero-variance groups dropped over all rounds),
    ``dynamic_sampling/tries`` (generation rounds), ``dynamic_sampling/topped_up_groups``,
    ``dynamic_sampling/moved_groups`` (groups trained on by another rank than the one that generated
    them) and ``dynamic_sampling/generated_reward`` (mean reward of everything generated, before
    filtering). TRL's reward metrics (``reward``, ``reward_std``, ``frac_reward_zero_std``,
    ``rewards/<func>/mean|std``) are replaced by their values over the groups the step trains on.
    """

    dynamic_sampling: bool = False
    dynamic_sampling_max_tries: int = 3

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):  # noqa: D401 (TRL hook)
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._round_rewards = rewards_per_func.detach().float().cpu()  # all ranks' rows: TRL gathered them
        return rewards_per_func

    def _total_rewards(self, rewards_per_func: Tensor) -> Tensor:
        """TRL's weighted reward sum per row; NaN where every reward function returned None."""
        total = (rewards_per_func * self.reward_weights.float().cpu().unsqueeze(0)).nansum(dim=1)
        total[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan
        return total

    def _refill_inputs(self, n_groups: int, attempt: int) -> list[dict[str, Any]]:
        """This rank's share of ``n_groups`` fresh prompts, each repeated ``num_generations`` times.

        One draw for all ranks, seeded by (seed, global step, attempt), sliced by rank: the ranks
        together generate the same prompts as one process would, and a resumed run refills exactly as
        the uninterrupted one would.
        """
        dataset = self.train_dataset
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        generator = torch.Generator().manual_seed(
            int(self.args.seed) * 1_000_003 + int(self.state.global_step) * 7919 + attempt * 104_729)
        picks = torch.randint(len(dataset), (n_groups,), generator=generator).tolist()
        per_rank = n_groups // world
        rows = []
        for i in picks[rank * per_rank:(rank + 1) * per_rank]:
            row = dataset[int(i)]
            rows.extend(dict(row) for _ in range(self.num_generations))
        return rows

    def _receive_groups(self, plan: RefillPlan, held: dict[GroupId, dict[str, Any]]) -> dict[GroupId, dict[str, Any]]:
        """``held`` plus the groups this rank trains on but another generated (one ``gather_object``).

        Every rank derives the same plan, so either all of them skip the collective or all call it.
        """
        from accelerate.utils import gather_object

        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        moves = plan.moves(world)
        if not moves:
            return held
        outgoing = {group: _to_device(held[group], "cpu") for group in moves if group in held}
        received = {}
        for part in gather_object([outgoing]):
            received.update({group: batch for group, batch in part.items() if moves[group] == rank})
        device = self.accelerator.device
        return {**held, **{group: _to_device(batch, device) for group, batch in received.items()}}

    def _generate_and_score_completions(self, inputs):
        mode = "train" if self.model.training else "eval"
        if not (self.dynamic_sampling and mode == "train"):
            return super()._generate_and_score_completions(inputs)
        g = self.num_generations
        if len(inputs) % g:
            raise ValueError(f"dynamic sampling needs whole groups per process: local generation batch {len(inputs)} "
                             f"is not a multiple of num_generations={g}")
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        per_rank = len(inputs) // g
        plan = RefillPlan(per_rank * world)
        metrics = self._metrics[mode]
        rescored = ["reward", "reward_std", "frac_reward_zero_std",
                    *(f"rewards/{name}/{stat}" for name in self.reward_func_names for stat in ("mean", "std"))]
        logged_before = {key: len(metrics[key]) for key in rescored}
        held: dict[GroupId, dict[str, Any]] = {}  # this rank's rows of the groups the plan may train on
        round_rewards: list[Tensor] = []
        batch_inputs = inputs
        for attempt in range(max(1, int(self.dynamic_sampling_max_tries))):
            output = super()._generate_and_score_completions(batch_inputs)
            round_rewards.append(self._round_rewards)
            for group in plan.add_round(zero_variance_groups(self._total_rewards(self._round_rewards), g)):
                if group[1] // per_rank == rank:
                    first = (group[1] - rank * per_rank) * g
                    held[group] = select_rows(output, range(first, first + g))
            if plan.full:  # every rank saw the same gathered rewards, so all stop at the same round
                break
            batch_inputs = self._refill_inputs(plan.need, attempt)
        groups = self._receive_groups(plan, held)
        merged = concat_batches([groups[group] for group in plan.shares(world)[rank]], self._tokenizer.pad_token_id)
        loss_mask = merged["completion_mask"] * merged["tool_mask"] if "tool_mask" in merged else merged["completion_mask"]
        merged["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        self._log_trained_rewards(metrics, logged_before, plan, round_rewards)
        return merged

    def _log_trained_rewards(self, metrics, logged_before: dict[str, int], plan: RefillPlan,
                             round_rewards: list[Tensor]) -> None:
        """Reward metrics over the groups the step trains on (TRL logged them per round, dropped groups too)."""
        from trl.trainer.utils import nanstd

        g, world = self.num_generations, self.accelerator.num_processes
        for key, start in logged_before.items():
            del metrics[key][start:]
        trained = torch.cat([round_rewards[r][j * g:(j + 1) * g] for r, j in plan.final()])
        total = self._total_rewards(trained)
        metrics["reward"].append(torch.nanmean(total).item())
        metrics["reward_std"].append(nanstd(total).item())
        metrics["frac_reward_zero_std"].append(plan.topped_up / plan.need)
        for i, name in enumerate(self.reward_func_names):
            metrics[f"rewards/{name}/mean"].append(torch.nanmean(trained[:, i]).item())
            metrics[f"rewards/{name}/std"].append(nanstd(trained[:, i]).item())
        generated = self._total_rewards(torch.cat(round_rewards))
        metrics["dynamic_sampling/generated_reward"].append(torch.nanmean(generated).item())
        metrics["dynamic_sampling/kept_groups"].append(float(len(plan.kept)))
        metrics["dynamic_sampling/filtered_groups"].append(float(plan.filtered))
        metrics["dynamic_sampling/tries"].append(float(plan.rounds))
        metrics["dynamic_sampling/topped_up_groups"].append(float(plan.topped_up))
        metrics["dynamic_sampling/moved_groups"].append(float(len(plan.moves(world))))
        log.debug("dynamic sampling: kept %d groups, filtered %d, %d rounds, topped up %d, moved %d",
                  len(plan.kept), plan.filtered, plan.rounds, plan.topped_up, len(plan.moves(world)))
