"""Training-step overhead of KAWHI: GRPO against GRPO+KAWHI, side by side on the same tiny model, seed and data.

Each round trains a fresh copy of the same policy for ``--steps`` steps with each variant (order
alternating between rounds, to spread the shared CPU's noise over both), at learning rate 0 so that
both variants sample exactly the same rollouts. The per-step times are
TRL's own ``step_time`` (generation + scoring + loss + backward + optimizer), first step of each run
dropped as warm-up; the ratio is of the medians. A second measurement times only the loss path
(forward + KAWHI weights + backward) on one fixed rollout batch, interleaved, which isolates what
KAWHI adds. Last line: ``step_ratio <kawhi/baseline>`` (goal <= 1.05).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/step_overhead.py [--model DIR] [--steps 6] [--rounds 2]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def _settings(variant: str, steps: int) -> dict:
    from kawhi.config import load_config, train_settings

    config = load_config(REPO / "config" / "config.yaml")
    settings = train_settings(config, next(iter(config["models"])), "grpo", variant)
    # learning rate 0: both variants keep the same policy, so every step sees the same rollouts (same seed)
    # and the timing difference is KAWHI's work alone, not diverging response lengths.
    settings["training"].update({"max_steps": steps, "save_steps": 10_000, "gallery_size": 0, "learning_rate": 0.0})
    return settings


def _trainer(model_dir: Path, data: Path, variant: str, steps: int, heads: list[int], out: Path):
    from kawhi.config import KawhiSettings
    from kawhi.train.presets import build_grpo_config
    from kawhi.train.rewards import build_reward_functions
    from kawhi.train.run import load_policy, load_rl_dataset
    from kawhi.train.trainer import KawhiGRPOTrainer

    settings = _settings(variant, steps)
    model, processor = load_policy(model_dir)
    funcs, weights = build_reward_functions(settings["training"], settings["algorithm"])
    args = build_grpo_config(settings, out, reward_weights=weights)
    args.disable_tqdm = True
    kawhi = KawhiSettings.from_dict(settings["kawhi"])
    return KawhiGRPOTrainer(model=model, processing_class=processor, reward_funcs=funcs, args=args,
                            train_dataset=load_rl_dataset([data]), kawhi=kawhi,
                            heads=heads if kawhi.enabled else (), gallery_size=0)


def step_times(model_dir: Path, data: Path, variant: str, steps: int, heads: list[int], out: Path) -> list[float]:
    from transformers import set_seed

    set_seed(0)
    trainer = _trainer(model_dir, data, variant, steps, heads, out)
    trainer.train()
    times = [h["step_time"] for h in trainer.state.log_history if "step_time" in h]
    return times[1:]  # the first step pays one-off costs (allocations, lazy imports)


def loss_path_times(model_dir: Path, data: Path, heads: list[int], out: Path, reps: int) -> dict[str, list[float]]:
    """Forward + backward of the loss on one fixed rollout batch, the two variants interleaved."""
    from transformers import set_seed

    trainers = {v: _trainer(model_dir, data, v, 1, heads, out / v) for v in ("baseline", "kawhi")}
    base = trainers["baseline"]
    trainers["kawhi"].model.load_state_dict(base.model.state_dict())
    set_seed(0)
    base.model.train()
    g = base.num_generations
    rows = [base.train_dataset[i] for i in range(base.args.per_device_train_batch_size // g) for _ in range(g)]
    batch = base._generate_and_score_completions(rows)
    times: dict[str, list[float]] = {"baseline": [], "kawhi": []}
    for rep in range(reps):
        for name in (("baseline", "kawhi") if rep % 2 == 0 else ("kawhi", "baseline")):
            trainer = trainers[name]
            trainer.current_gradient_accumulation_steps = 1
            trainer.model.train()
            trainer.model.zero_grad()
            inputs = copy.copy(batch)
            start = time.perf_counter()
            trainer._compute_loss(trainer.model, inputs).backward()
            times[name].append(time.perf_counter() - start)
    return times


def policy_dir(model: Path | None, arch: str, tmp: Path) -> Path:
    """``model``, else the first warm-started policy of a `make run` (results/models/<first>/sft), else a
    freshly built tiny model of ``arch`` under ``tmp``."""
    if model is not None:
        return model
    found = sorted(REPO.glob("results/models/*/sft/config.json"))
    if found:
        return found[0].parent
    from kawhi.models.tiny import build_tiny_model

    return build_tiny_model(arch=arch, out_dir=tmp / "model", seed=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="policy directory (default: results/models/<first>/sft, "
                                                    "else a freshly built tiny model)")
    parser.add_argument("--arch", default="qwen2_5_vl")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--loss-reps", type=int, default=10)
    parser.add_argument("--heads", type=Path, help="critical_heads.json (default: results/heads/<first>/, else [0, 1])")
    args = parser.parse_args()

    from kawhi.data.synthetic import write_suite

    tmp = Path(tempfile.mkdtemp(prefix="kawhi-step-overhead-"))
    model_dir = policy_dir(args.model, args.arch, tmp)
    heads = [0, 1]
    heads_file = args.heads or next(iter(sorted(REPO.glob("results/heads/*/critical_heads.json"))), None)
    if heads_file:
        heads = json.loads(Path(heads_file).read_text())["heads"] or heads
    data = tmp / "train.parquet"
    write_suite(suite="shapes_count", split="train", n=64, seed=0, out=data)
    print(f"model {model_dir}  heads {heads}  threads {os.environ.get('OMP_NUM_THREADS')}", flush=True)

    per_step: dict[str, list[float]] = {"baseline": [], "kawhi": []}
    for r in range(args.rounds):
        for variant in (("baseline", "kawhi") if r % 2 == 0 else ("kawhi", "baseline")):
            per_step[variant] += step_times(model_dir, data, variant, args.steps, heads, tmp / f"{variant}-{r}")
    loss = loss_path_times(model_dir, data, heads, tmp / "loss", args.loss_reps)

    med = {k: statistics.median(v) for k, v in per_step.items()}
    loss_med = {k: statistics.median(v) for k, v in loss.items()}
    print(f"{'':24s}{'baseline':>12s}{'kawhi':>12s}{'ratio':>10s}")
    print(f"{'train step (median s)':24s}{med['baseline']:12.4f}{med['kawhi']:12.4f}"
          f"{med['kawhi'] / med['baseline']:10.3f}")
    print(f"{'loss fwd+bwd (median s)':24s}{loss_med['baseline']:12.4f}{loss_med['kawhi']:12.4f}"
          f"{loss_med['kawhi'] / loss_med['baseline']:10.3f}")
    print(f"steps timed: {len(per_step['baseline'])} + {len(per_step['kawhi'])}; loss reps {args.loss_reps} each")
    print(f"step_ratio {med['kawhi'] / med['baseline']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
