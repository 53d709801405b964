"""Training-step time of the fine-grained reward baselines against GRPO, side by side in one run.

GRPO, FT-RL, VPPO and Step-GRPO each train a fresh copy of the same tiny policy for ``--steps`` steps on
the same data and seed, at learning rate 0 (every algorithm then samples the same rollouts, so the
times differ only by each method's own work), the order rotated between rounds to spread the shared
CPU's noise. Per-step time is TRL's ``step_time`` (generation + scoring + extra forwards + loss +
backward + optimizer), the first step of each run dropped as warm-up (kept with ``--steps 1``, then
warm-up included); ratios are of the medians.
Dynamic sampling is off for every algorithm here: its extra generation rounds are part of a recipe
(DAPO's, which FT-RL and VPPO use), not of the mechanism measured. Last lines: ``ratio <algo> <x>``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/baseline_overhead.py [--model DIR] [--steps 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from step_overhead import policy_dir  # benchmarks/ is sys.path[0] when a script here runs

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
ALGOS = ("grpo", "ft-rl", "vppo", "step-grpo")


def step_times(model_dir: Path, data: Path, algo: str, steps: int, out: Path) -> list[float]:
    from transformers import set_seed

    from kawhi.config import KawhiSettings, load_config, train_settings
    from kawhi.train.baselines.vppo import VPPOSettings
    from kawhi.train.presets import algorithm_from_settings, build_grpo_config
    from kawhi.train.rewards import build_reward_functions
    from kawhi.train.run import load_policy, load_rl_dataset
    from kawhi.train.trainer import KawhiGRPOTrainer

    config = load_config(REPO / "config" / "config.yaml")
    settings = train_settings(config, next(iter(config["models"])), algo, "baseline")
    settings["training"].update({"max_steps": steps, "save_steps": 10_000, "gallery_size": 0, "learning_rate": 0.0})
    settings["algorithm"]["dynamic_sampling"] = False
    algorithm = algorithm_from_settings(settings)
    set_seed(0)
    model, processor = load_policy(model_dir)
    funcs, weights = build_reward_functions(settings["training"], settings["algorithm"])
    args = build_grpo_config(settings, out, reward_weights=weights)
    args.disable_tqdm = True
    step_grpo = algorithm.step_grpo
    dataset = load_rl_dataset([data], extra_columns=[step_grpo["column"]] if step_grpo else [])
    trainer = KawhiGRPOTrainer(model=model, processing_class=processor, reward_funcs=funcs, args=args,
                               train_dataset=dataset, kawhi=KawhiSettings.from_dict(settings["kawhi"]),
                               vppo=VPPOSettings(**algorithm.vppo) if algorithm.vppo else None, gallery_size=0)
    trainer.train()
    times = [h["step_time"] for h in trainer.state.log_history if "step_time" in h]
    # the first step pays one-off costs (allocations, lazy imports): dropped, unless it is the only one
    return times[1:] if len(times) > 1 else times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="policy directory (default: results/models/<first>/sft, "
                                                    "else a freshly built tiny model)")
    parser.add_argument("--arch", default="qwen2_5_vl")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from kawhi.data.synthetic import write_suite

    tmp = Path(tempfile.mkdtemp(prefix="kawhi-baseline-overhead-"))
    model_dir = policy_dir(args.model, args.arch, tmp)
    data = tmp / "train.parquet"
    write_suite(suite="shapes_arith", split="train", n=64, seed=0, out=data)
    print(f"model {model_dir}  threads {os.environ.get('OMP_NUM_THREADS')}", flush=True)

    per_step: dict[str, list[float]] = {a: [] for a in ALGOS}
    for r in range(args.rounds):
        order = ALGOS[r % len(ALGOS):] + ALGOS[:r % len(ALGOS)]
        for algo in order:
            per_step[algo] += step_times(model_dir, data, algo, args.steps, tmp / f"{algo}-{r}")
    med = {a: statistics.median(t) for a, t in per_step.items()}
    print(f"{'algorithm':<10} {'median step s':>14} {'steps':>6} {'vs GRPO':>8}")
    for algo in ALGOS:
        print(f"{algo:<10} {med[algo]:>14.3f} {len(per_step[algo]):>6} {med[algo] / med['grpo']:>8.3f}")
    for algo in ALGOS[1:]:
        print(f"ratio {algo} {med[algo] / med['grpo']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
