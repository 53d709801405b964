"""``kawhi train`` with recording hooks: the worker of tests/test_train_multiprocess.py.

    python tests/train_recorder.py --record DIR [--replay DIR] [--reward content|starve-rank1] -- train ARGS...
    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/train_recorder.py --record DIR -- train ...

It runs ``kawhi.cli.main(["train", ...])`` unchanged except for two test seams, both through the
package's public names: the trainer class gains recording hooks, and the configured rewards are
replaced by a reward the test controls.

--record DIR   every process appends JSON lines to DIR/rank<r>.jsonl: each generation call (its prompt
               and completion token ids), each loss call's batch (every row's prompt and completion
               tokens, the scalar advantage A_i the loss call started from, and the per-token
               advantages as the loss read them, i.e. A_i times the KAWHI weights), how accelerate set
               the process group up (world size, distributed type, FSDP/DeepSpeed, mixed precision) and a hash of the parameters after each optimiser step.
--replay DIR   (one process) generation call k returns the completions recorded in DIR for call k of
               rank 0, then rank 1, ..., after checking that its own prompts are theirs in that order.
               Everything after generation (rewards, dynamic sampling, advantages, KAWHI weights, the
               optimiser) runs for real, so the run is the one-process run over the same global batch.
--reward       ``content``: 1 or 0 from a hash of the completion tokens (mixed and zero-variance
               groups; the same completion always earns the same reward). ``starve-rank1``: the same,
               but 0 for every completion generated on rank 1, so all of rank 1's groups are dropped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zlib
from pathlib import Path
from typing import Any

import torch


class Recorder:
    """Where this process writes, what it replays, and which rank generated each row of the current call."""

    def __init__(self, record: Path, replay: Path | None, reward: str) -> None:
        self.record, self.replay, self.reward = record, replay, reward
        self.rank = 0
        self.row_ranks: list[int] = []  # the generating rank of each row of the latest generation call
        self.replayed: list[list[dict[str, Any]]] = []
        if replay is not None:
            files = sorted(replay.glob("rank*.jsonl"), key=lambda p: int(p.stem[4:]))
            self.replayed = [[r for r in read_records(f) if r["kind"] == "generate"] for f in files]

    def write(self, record: dict[str, Any]) -> None:
        self.record.mkdir(parents=True, exist_ok=True)
        with open(self.record / f"rank{self.rank}.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def replay_call(self, call: int, prompt_ids: list[list[int]]) -> list[list[int]]:
        if any(call >= len(calls) for calls in self.replayed):
            raise RuntimeError(f"replay: generation call {call} was never recorded (the recorded run made "
                               f"{[len(c) for c in self.replayed]} calls per rank)")
        parts = [calls[call] for calls in self.replayed]
        expected = [ids for part in parts for ids in part["prompt_ids"]]
        if [list(ids) for ids in prompt_ids] != expected:
            raise RuntimeError(f"replay: generation call {call} asks for other prompts than the recorded ranks "
                               f"generated for (first token rows {[ids[:3] for ids in prompt_ids[:4]]} vs "
                               f"{[ids[:3] for ids in expected[:4]]}, {len(prompt_ids)} vs {len(expected)} rows)")
        self.row_ranks = [r for r, part in enumerate(parts) for _ in part["prompt_ids"]]
        return [ids for part in parts for ids in part["completion_ids"]]


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def parameter_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def batch_rows(inputs: dict[str, Any], scalar: torch.Tensor | None) -> list[dict[str, Any]]:
    """Each row's unpadded prompt and completion tokens, its per-token advantages as the loss read them, and
    the algorithm's scalar advantage A_i the loss call started from (None when it was already per token)."""
    rows = []
    advantages = inputs["advantages"]
    for i in range(inputs["prompt_ids"].shape[0]):
        completion_mask = inputs["completion_mask"][i].bool()
        adv = advantages[i][completion_mask] if advantages.dim() == 2 else advantages[i].expand(int(completion_mask.sum()))
        rows.append({"prompt": inputs["prompt_ids"][i][inputs["prompt_mask"][i].bool()].tolist(),
                     "completion": inputs["completion_ids"][i][completion_mask].tolist(),
                     "advantages": adv.float().tolist(),
                     "scalar": None if scalar is None else float(scalar[i])})
    return rows


def install(recorder: Recorder) -> None:
    """Swap the trainer class and the reward builder that ``kawhi.train.run.train_run`` imports."""
    import kawhi.train.rewards as rewards
    import kawhi.train.trainer as trainer_module
    from transformers import TrainerCallback

    base = trainer_module.KawhiGRPOTrainer

    class StepHashes(TrainerCallback):
        def __init__(self, trainer) -> None:
            self.trainer = trainer

        def on_step_end(self, args, state, control, **kwargs):
            model = self.trainer.accelerator.unwrap_model(self.trainer.model)
            recorder.write({"kind": "params", "step": int(state.global_step), "hash": parameter_hash(model)})

    class RecordingTrainer(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            recorder.rank = self.accelerator.process_index
            self._recorded_calls = 0
            state = self.accelerator.state
            recorder.write({"kind": "setup", "world": int(state.num_processes),
                            "distributed_type": str(state.distributed_type.value),
                            "fsdp": bool(self.is_fsdp_enabled), "deepspeed": bool(self.is_deepspeed_enabled),
                            "mixed_precision": str(state.mixed_precision)})
            self.add_callback(StepHashes(self))

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, *args, **kwargs):
            call = self._recorded_calls
            self._recorded_calls += 1
            if recorder.replay is not None:
                completion_ids, logprobs = recorder.replay_call(call, prompt_ids), None
            else:
                completion_ids, logprobs = super()._generate_single_turn(prompt_ids, images, multimodal_fields,
                                                                         num_generations, *args, **kwargs)
                recorder.row_ranks = [recorder.rank] * len(completion_ids)
            recorder.write({"kind": "generate", "call": call, "step": int(self.state.global_step),
                            "prompt_ids": [list(map(int, ids)) for ids in prompt_ids],
                            "completion_ids": [list(map(int, ids)) for ids in completion_ids]})
            return completion_ids, logprobs

        def _compute_loss(self, model, inputs):
            advantages = inputs["advantages"]
            scalar = advantages.detach().clone() if advantages.dim() == 1 else None
            loss = super()._compute_loss(model, inputs)  # KAWHI replaces inputs["advantages"] during it
            recorder.write({"kind": "loss", "step": int(self.state.global_step), "rows": batch_rows(inputs, scalar)})
            return loss

    def test_reward(prompts, completions, completion_ids, **kwargs):
        scores = []
        for ids, rank in zip(completion_ids, recorder.row_ranks, strict=True):
            starved = recorder.reward == "starve-rank1" and rank == 1
            scores.append(0.0 if starved else float(zlib.crc32(bytes(str(list(ids)), "ascii")) % 2))
        return scores

    trainer_module.KawhiGRPOTrainer = RecordingTrainer
    rewards.build_reward_functions = lambda *args, **kwargs: ([test_reward], [1.0])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--replay", type=Path, default=None)
    parser.add_argument("--reward", choices=["content", "starve-rank1"], default="content")
    args = parser.parse_args(argv[:split])
    install(Recorder(args.record, args.replay, args.reward))
    from kawhi.cli import main as kawhi_main

    return kawhi_main(argv[split + 1:])


if __name__ == "__main__":
    sys.exit(main())
