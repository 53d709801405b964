"""TRL's fused LM head on the response positions only (kawhi/train/lm_head.py) against every position, per train job.

Times the embedded config's GRPO+KAWHI job with the Snakefile's malloc thresholds, side by side in alternating
turns (benchmarks/train_job_turns.py says how). "full" is TRL's own CPU behaviour (the hook is switched off in that
process); "compact" is `kawhi train` as the pipeline runs it.

The two settings compute the same log-probs on fewer rows. The LM head's weight gradient sums fewer zero rows,
so the final weights can differ in the last bits; the last line gives the largest difference.

    nice .venv/bin/python benchmarks/lm_head_compact.py [--steps 20] [--pairs 3] [--jobs 2]

Last line: ``lm_head_wall_ratio <compact/full> user_ratio <compact/full> max_weight_diff <x>``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from train_job_turns import add_turn_arguments, alternate_turns, job_env, kawhi_run_by

# `kawhi train` with the hook switched off: train_run imports compact_lm_head_on_cpu when it runs
FULL_HEAD = ("import sys, kawhi.train.lm_head as hook; hook.compact_lm_head_on_cpu = lambda: None; "
             "from kawhi.cli import main; sys.exit(main(sys.argv[1:]))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_turn_arguments(parser, steps=20)
    args = parser.parse_args()

    from safetensors.torch import load_file

    env = job_env()
    settings = {"full": (kawhi_run_by(FULL_HEAD), env), "compact": (list, env)}  # list: the command as it is
    weights = {}  # the first run's final weights per setting

    def keep_weights(name: str, out: Path) -> None:
        if name not in weights:
            weights[name] = load_file(next((out / "final").glob("*.safetensors")))

    med = alternate_turns(settings, args, on_run=keep_weights, prefix="kawhi-lm-head-")
    diff = max(float((weights["compact"][k] - weights["full"][k]).abs().max()) for k in weights["full"])
    print(f"lm_head_wall_ratio {med['compact']['wall'] / med['full']['wall']:.3f} "
          f"user_ratio {med['compact']['user'] / med['full']['user']:.3f} max_weight_diff {diff:.3g}")


if __name__ == "__main__":
    main()
