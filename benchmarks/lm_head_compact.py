"""TRL's fused LM head on the response positions only (kawhi/train/lm_head.py) against every position, per train job.

Runs the embedded config's GRPO+KAWHI job (its first model, settings from config/config.yaml, ``--steps``
steps) as subprocesses, ``--jobs`` (2) side by side as `make run` runs them on 2 cores, with the Snakefile's
malloc thresholds. "full" is TRL's own CPU behaviour (the hook is switched off in that process); "compact" is
`kawhi train` as the pipeline runs it. There are ``--pairs`` turns per setting, with the order alternating.
Each job's wall and user time come from the kernel (``os.wait4``); the medians over jobs are reported. The policy
and heads are found as in benchmarks/malloc_tunables.py.

The two settings compute the same log-probs on fewer rows. The LM head's weight gradient sums fewer zero rows,
so the final weights can differ in the last bits; the last line gives the largest difference.

    nice .venv/bin/python benchmarks/lm_head_compact.py [--steps 20] [--pairs 3] [--jobs 2]

Last line: ``lm_head_wall_ratio <compact/full> user_ratio <compact/full> max_weight_diff <x>``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from malloc_tunables import REPO, job_command, timed_jobs  # benchmarks/ is sys.path[0] when a script here runs
from step_overhead import policy_dir

# `kawhi train` with the hook switched off: train_run imports compact_lm_head_on_cpu when it runs
FULL_HEAD = ("import sys, kawhi.train.lm_head as hook; hook.compact_lm_head_on_cpu = lambda: None; "
             "from kawhi.cli import main; sys.exit(main(sys.argv[1:]))")


def command_for(setting: str, command: list[str]) -> list[str]:
    return command if setting == "compact" else [sys.executable, "-c", FULL_HEAD, *command[1:]]


def max_weight_diff(runs: list[Path]) -> float:
    from safetensors.torch import load_file

    weights = [load_file(next((run / "final").glob("*.safetensors"))) for run in runs]
    return max(float((w[name] - weights[0][name]).abs().max()) for w in weights[1:] for name in w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per job")
    parser.add_argument("--pairs", type=int, default=3, help="turns per setting (order alternating)")
    parser.add_argument("--jobs", type=int, default=2, help="jobs side by side in a turn (make run: one per core)")
    args = parser.parse_args()

    from kawhi.data.synthetic.writer import write_suite
    from kawhi.malloc import set_malloc_tunables

    tmp = Path(tempfile.mkdtemp(prefix="kawhi-lm-head-"))
    policy = policy_dir(None, "qwen2_5_vl", tmp)
    heads = next(iter(sorted(REPO.glob("results/heads/*/critical_heads.json"))), None)
    if heads is None:
        heads = tmp / "critical_heads.json"
        heads.write_text(json.dumps({"heads": [0, 1]}))
    data = write_suite(suite="shapes_count", split="train", n=256, seed=0, out=tmp / "train.parquet")
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    set_malloc_tunables(env)
    print(f"policy {policy}, {args.steps} steps per job, {args.pairs} turns per setting of {args.jobs} jobs side by "
          "side", flush=True)

    times: dict[str, list[dict[str, float]]] = {"full": [], "compact": []}
    kept = {}  # one run per setting, for the weights
    for pair in range(args.pairs):
        for setting in (("full", "compact") if pair % 2 == 0 else ("compact", "full")):
            outs = [tmp / f"{setting}-{pair}-{job}" for job in range(args.jobs)]
            commands = [command_for(setting, job_command(policy, heads, data, out, args.steps)) for out in outs]
            for out, result in zip(outs, timed_jobs(commands, env, [out.with_suffix(".log") for out in outs])):
                times[setting].append(result)
                print(f"  {setting:8s} wall {result['wall']:7.2f} s  user {result['user']:7.2f} s  "
                      f"sys {result['sys']:6.2f} s", flush=True)
                if setting in kept:
                    shutil.rmtree(out)
                else:
                    kept[setting] = out

    med = {name: {k: statistics.median(t[k] for t in runs) for k in ("wall", "user")} for name, runs in times.items()}
    for name, m in med.items():
        print(f"median {name:8s} wall {m['wall']:7.2f} s  user {m['user']:7.2f} s")
    diff = max_weight_diff([kept["full"], kept["compact"]])
    shutil.rmtree(tmp)
    print(f"lm_head_wall_ratio {med['compact']['wall'] / med['full']['wall']:.3f} "
          f"user_ratio {med['compact']['user'] / med['full']['user']:.3f} max_weight_diff {diff:.3g}")


if __name__ == "__main__":
    main()
