"""The ``kawhi`` command's exit (kawhi.cli.run: ``gc.freeze()`` before the interpreter shuts down) against a plain exit.

Runs the embedded config's GRPO+KAWHI ``kawhi train`` job (``--steps`` steps, default 2, so that start-up and exit
dominate) as subprocesses, ``--jobs`` (2) side by side as `make run` runs them on 2 cores, with the Snakefile's
malloc thresholds. "plain" calls ``kawhi.cli.main`` and exits; "frozen" is the ``kawhi`` console script. There are
``--pairs`` turns per setting, with the order alternating. Each job's wall and user time come from the kernel
(``os.wait4``); the medians over jobs are reported. The policy and heads are found as in
benchmarks/malloc_tunables.py. The exit happens after the job's outputs are written, so the weights must be
byte-identical; the last line says whether they were.

    nice .venv/bin/python benchmarks/exit_freeze.py [--steps 2] [--pairs 3] [--jobs 2]

Last line: ``exit_saving_s <plain - frozen wall, s> wall_ratio <frozen/plain> identical_weights <true|false>``.
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

from malloc_tunables import REPO, job_command, timed_jobs, weights_digest  # benchmarks/ is sys.path[0]
from step_overhead import policy_dir

PLAIN_EXIT = "import sys; from kawhi.cli import main; sys.exit(main(sys.argv[1:]))"


def command_for(setting: str, command: list[str]) -> list[str]:
    return command if setting == "frozen" else [sys.executable, "-c", PLAIN_EXIT, *command[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="training steps per job")
    parser.add_argument("--pairs", type=int, default=3, help="turns per setting (order alternating)")
    parser.add_argument("--jobs", type=int, default=2, help="jobs side by side in a turn (make run: one per core)")
    args = parser.parse_args()

    from kawhi.data.synthetic.writer import write_suite
    from kawhi.malloc import set_malloc_tunables

    tmp = Path(tempfile.mkdtemp(prefix="kawhi-exit-"))
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

    times: dict[str, list[dict[str, float]]] = {"plain": [], "frozen": []}
    digests: set[str] = set()
    for pair in range(args.pairs):
        for setting in (("plain", "frozen") if pair % 2 == 0 else ("frozen", "plain")):
            outs = [tmp / f"{setting}-{pair}-{job}" for job in range(args.jobs)]
            commands = [command_for(setting, job_command(policy, heads, data, out, args.steps)) for out in outs]
            for out, result in zip(outs, timed_jobs(commands, env, [out.with_suffix(".log") for out in outs])):
                times[setting].append(result)
                digests.add(weights_digest(out))
                print(f"  {setting:7s} wall {result['wall']:7.2f} s  user {result['user']:7.2f} s  "
                      f"sys {result['sys']:6.2f} s", flush=True)
                shutil.rmtree(out)

    med = {name: {k: statistics.median(t[k] for t in runs) for k in ("wall", "user")} for name, runs in times.items()}
    for name, m in med.items():
        print(f"median {name:7s} wall {m['wall']:7.2f} s  user {m['user']:7.2f} s")
    shutil.rmtree(tmp)
    print(f"exit_saving_s {med['plain']['wall'] - med['frozen']['wall']:.2f} "
          f"wall_ratio {med['frozen']['wall'] / med['plain']['wall']:.3f} identical_weights {str(len(digests) == 1).lower()}")


if __name__ == "__main__":
    sys.exit(main())
