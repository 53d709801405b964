"""DAPO dynamic sampling: zero-variance groups are dropped and the batch refilled from more prompts."""

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kawhi.train.dynamic_sampling import (DynamicSamplingMixin, RefillPlan, concat_batches, select_rows,
                                          zero_variance_groups)

G = 2  # completions per prompt
PAD = 0


def test_zero_variance_groups_known():
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, float("nan"), float("nan"), 0.5, float("nan")])
    assert zero_variance_groups(rewards, 2).tolist() == [True, False, True, True, True]
    with pytest.raises(ValueError, match="groups of 3"):
        zero_variance_groups(rewards, 3)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.0, 1.0, 0.5]), min_size=3, max_size=3), min_size=1, max_size=6))
def test_zero_variance_groups_matches_set_size(groups):
    flags = zero_variance_groups(torch.tensor(groups).flatten(), 3).tolist()
    assert flags == [len(set(g)) == 1 for g in groups]


class _FakeGRPO:
    """Stands in for GRPOTrainer: each 'generation' scores prompts by a known table.

    A prompt id p gets completions whose rewards are ``REWARDS[p]``; the output has TRL's keys with
    prompt/completion widths that differ between calls, as real generation rounds do.
    """

    REWARDS = {0: [1.0, 1.0], 1: [0.0, 1.0], 2: [0.0, 0.0], 3: [1.0, 0.0], 4: [1.0, 0.0], 5: [0.0, 0.0]}

    def __init__(self, dataset):
        self.train_dataset = dataset
        self.num_generations = G
        self.reward_weights = torch.tensor([1.0])
        self.reward_func_names = ["table"]
        self.accelerator = SimpleNamespace(process_index=0, num_processes=1, device="cpu",
                                           gather=lambda t: t.reshape(-1))
        self.args = SimpleNamespace(seed=0)
        self.state = SimpleNamespace(global_step=0)
        self.model = SimpleNamespace(training=True)
        self._tokenizer = SimpleNamespace(pad_token_id=PAD)
        self._metrics = {"train": defaultdict(list)}
        self.rounds = []

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        return torch.tensor([[self.REWARDS[x["pid"]][i % G]] for i, x in enumerate(inputs)])

    def _generate_and_score_completions(self, inputs):
        pids = [x["pid"] for x in inputs]
        self.rounds.append(pids)
        rewards = self._calculate_rewards(inputs, pids, None, None)
        self._metrics["train"]["reward"].append(rewards.mean().item())  # as TRL does, once per round
        n = len(inputs)
        p_width, c_width = 2 + len(self.rounds), 1 + 2 * len(self.rounds)
        prompt_ids = torch.tensor([[PAD] * (p_width - 1) + [100 + p] for p in pids])
        completion_ids = torch.tensor([[200 + p] * (c_width - 1) + [PAD] for p in pids])
        completion_mask = (completion_ids != PAD).long()
        grid = torch.tensor([[1, 2, 2]] * n)
        return {
            "prompt_ids": prompt_ids, "prompt_mask": (prompt_ids != PAD).long(),
            "completion_ids": completion_ids, "completion_mask": completion_mask,
            "advantages": torch.tensor([float(p) for p in pids]),
            "old_per_token_logps": torch.full((n, c_width), -1.0),
            "num_items_in_batch": completion_mask.sum(),
            "pixel_values": torch.stack([torch.full((4, 3), float(p)) for p in pids]).reshape(n * 4, 3),
            "image_grid_thw": grid, "num_images": [1] * n,
        }


class _Sampler(DynamicSamplingMixin, _FakeGRPO):
    pass


def _rows(pids):
    return [{"pid": p} for p in pids for _ in range(G)]


def _groups(batch):
    return [int(batch["prompt_ids"][i, -1]) - 100 for i in range(0, batch["prompt_ids"].shape[0], G)]


def test_mixin_drops_zero_variance_groups_and_refills():
    dataset = [{"pid": 4}]  # every refill draws prompt 4 (mixed rewards)
    trainer = _Sampler(dataset)
    trainer.dynamic_sampling, trainer.dynamic_sampling_max_tries = True, 3
    out = trainer._generate_and_score_completions(_rows([0, 1, 2, 3]))  # groups 0 and 2 agree
    assert _groups(out) == [1, 3, 4, 4]
    # a refill round is a whole generation batch (the ranks' shapes never differ), cut to what is needed
    assert trainer.rounds == [[0, 0, 1, 1, 2, 2, 3, 3], [4] * 8]
    m = trainer._metrics["train"]
    assert m["dynamic_sampling/kept_groups"] == [4.0] and m["dynamic_sampling/filtered_groups"] == [2.0]
    assert m["dynamic_sampling/tries"] == [2.0] and m["dynamic_sampling/topped_up_groups"] == [0.0]
    assert m["dynamic_sampling/moved_groups"] == [0.0]
    # reward metrics over the trained groups (rewards 0,1 | 1,0 | 1,0 | 1,0), not per round over all 16 rows
    assert m["reward"] == [0.5] and m["rewards/table/mean"] == [0.5] and m["frac_reward_zero_std"] == [0.0]
    # rows re-padded to the widest round, pixel rows follow their sample, token count recomputed
    assert out["completion_ids"].shape == (8, 5) and out["prompt_ids"].shape == (8, 4)
    assert out["old_per_token_logps"].shape == (8, 5)
    assert out["advantages"].tolist() == [1.0, 1.0, 3.0, 3.0, 4.0, 4.0, 4.0, 4.0]
    assert out["pixel_values"].shape == (32, 3)
    assert out["pixel_values"][::4, 0].tolist() == [1.0, 1.0, 3.0, 3.0, 4.0, 4.0, 4.0, 4.0]
    assert int(out["num_items_in_batch"]) == int(out["completion_mask"].sum())
    assert out["prompt_mask"][:4, 0].tolist() == [0, 0, 0, 0]  # round-1 prompts left-padded to width 4
    assert out["completion_mask"][:4, -1].tolist() == [0, 0, 0, 0]  # round-1 completions right-padded


def test_mixin_tops_up_with_dropped_groups_when_tries_run_out():
    trainer = _Sampler([{"pid": 5}])  # refills never help: prompt 5 always agrees
    trainer.dynamic_sampling, trainer.dynamic_sampling_max_tries = True, 2
    out = trainer._generate_and_score_completions(_rows([0, 1]))
    assert len(trainer.rounds) == 2
    assert _groups(out) == [1, 0]  # the kept group, then a dropped one to keep the batch shape
    m = trainer._metrics["train"]
    assert m["dynamic_sampling/kept_groups"] == [1.0] and m["dynamic_sampling/topped_up_groups"] == [1.0]
    assert m["dynamic_sampling/filtered_groups"] == [3.0]  # group 0, then both groups of prompt 5
    assert m["reward"] == [0.75] and m["frac_reward_zero_std"] == [0.5]  # rows 0,1 (kept) and 1,1 (top-up)
    assert m["dynamic_sampling/generated_reward"] == [3 / 8]  # everything generated: 1,1 0,1 0,0 0,0


def test_mixin_off_is_transparent():
    trainer = _Sampler([{"pid": 4}])
    trainer.dynamic_sampling = False
    out = trainer._generate_and_score_completions(_rows([0, 2]))
    assert _groups(out) == [0, 2] and len(trainer.rounds) == 1
    assert "dynamic_sampling/kept_groups" not in trainer._metrics["train"]


def test_select_and_concat_roundtrip():
    trainer = _FakeGRPO([])
    a = trainer._generate_and_score_completions(_rows([0, 1]))
    b = trainer._generate_and_score_completions(_rows([2]))
    merged = concat_batches([select_rows(a, [2, 3]), b], PAD)
    assert _groups(merged) == [1, 2]
    assert merged["num_images"] == [1, 1, 1, 1]
    assert torch.equal(merged["image_grid_thw"], torch.tensor([[1, 2, 2]] * 4))


def _plan(rounds, need):
    plan = RefillPlan(need)
    for flags in rounds:
        plan.add_round(torch.tensor(flags))
        if plan.full:
            break
    return plan


def test_plan_hands_a_starved_rank_the_groups_of_another():
    # 2 ranks x 2 groups; rank 1's groups (2, 3) always agree, rank 0's never
    plan = _plan([[False, False, True, True], [False, False, True, True]], need=4)
    assert plan.final() == [(0, 0), (0, 1), (1, 0), (1, 1)] and plan.rounds == 2
    assert plan.shares(2) == [[(0, 0), (0, 1)], [(1, 0), (1, 1)]]
    assert plan.moves(2) == {(1, 0): 1, (1, 1): 1}  # generated on rank 0, trained on by rank 1
    assert plan.moves(1) == {}
    assert plan.filtered == 4


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([1, 2, 4]), st.integers(1, 3), st.data())
def test_plan_is_the_same_whatever_the_number_of_ranks(world, per_rank, data):
    need = world * per_rank
    rounds = data.draw(st.lists(st.lists(st.booleans(), min_size=need, max_size=need), min_size=1, max_size=3))
    plan = _plan(rounds, need)
    mixed = [(r, j) for r, flags in enumerate(rounds[:plan.rounds]) for j, agree in enumerate(flags) if not agree]
    agree = [(r, j) for r, flags in enumerate(rounds[:plan.rounds]) for j, a in enumerate(flags) if a]
    # the first `need` mixed groups in (round, group) order, then the first dropped ones
    assert plan.final() == (mixed[:need] if len(mixed) >= need else (mixed + agree)[:need])
    assert len(plan.final()) == need and plan.topped_up == need - min(len(mixed), need)
    shares = plan.shares(world)
    assert [g for share in shares for g in share] == plan.final()  # rank r takes the r-th slice
    assert all(len(share) == per_rank for share in shares)
    moves = plan.moves(world)
    for r, share in enumerate(shares):
        for group in share:
            assert (group in moves) == (group[1] // per_rank != r)
