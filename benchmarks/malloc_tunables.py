"""The Snakefile's glibc malloc thresholds (kawhi/malloc.py) against glibc's defaults, on a whole `kawhi train` job.

Runs the embedded config's GRPO+KAWHI job (its first model, settings from config/config.yaml, ``--steps``
steps) as subprocesses, ``--jobs`` (2) side by side as `make run` runs them on 2 cores, once with
``GLIBC_TUNABLES`` unset and once with the Snakefile's value, ``--pairs`` times with the order alternating;
each job's wall, user and system time come from the kernel (``os.wait4``); medians over jobs. The policy is
``results/models/<first>/sft`` of a `make run` when there is one, else a freshly built tiny model; the heads
are ``results/heads/<first>/critical_heads.json``, else [0, 1]. The two settings must give byte-identical
final weights: the last line says whether they did.

    nice .venv/bin/python benchmarks/malloc_tunables.py [--steps 20] [--pairs 3] [--jobs 2]

Last line: ``malloc_wall_ratio <tuned/default> sys_ratio <tuned/default> identical_weights <true|false>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from step_overhead import policy_dir  # benchmarks/ is sys.path[0] when a script here runs

REPO = Path(__file__).resolve().parents[1]


def job_command(policy: Path, heads: Path, data: Path, out: Path, steps: int) -> list[str]:
    from kawhi.config import load_config, train_settings

    config = load_config(REPO / "config" / "config.yaml")
    settings = train_settings(config, next(iter(config["models"])), "grpo", "kawhi")
    settings["training"].update({"max_steps": steps, "save_steps": 10_000, "gallery_size": 0})
    kawhi = str(Path(sys.executable).with_name("kawhi"))
    return [kawhi, "train", "--model", str(policy), "--algo", "grpo", "--variant", "kawhi", "--heads", str(heads),
            "--data", str(data), "--out", str(out), "--settings", json.dumps(settings)]


def timed_jobs(commands: list[list[str]], env: dict[str, str], logs: list[Path]) -> list[dict[str, float]]:
    """Run ``commands`` side by side; each one's wall, user and system seconds."""
    start = time.perf_counter()
    procs = {}
    for command, log in zip(commands, logs):
        with log.open("w") as sink:
            procs[subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT).pid] = log
    times = {}
    while procs:
        pid, status, usage = os.wait4(-1, 0)
        log = procs.pop(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"a job failed; its log: {log}")
        times[log] = {"wall": time.perf_counter() - start, "user": usage.ru_utime, "sys": usage.ru_stime}
    return [times[log] for log in logs]


def weights_digest(run_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((run_dir / "final").glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per job")
    parser.add_argument("--pairs", type=int, default=3, help="turns per setting (order alternating)")
    parser.add_argument("--jobs", type=int, default=2, help="jobs side by side in a turn (make run: one per core)")
    args = parser.parse_args()

    from kawhi.data.synthetic.writer import write_suite
    from kawhi.malloc import set_malloc_tunables

    tmp = Path(tempfile.mkdtemp(prefix="kawhi-malloc-"))
    policy = policy_dir(None, "qwen2_5_vl", tmp)
    heads = next(iter(sorted(REPO.glob("results/heads/*/critical_heads.json"))), None)
    if heads is None:
        heads = tmp / "critical_heads.json"
        heads.write_text(json.dumps({"heads": [0, 1]}))
    data = write_suite(suite="shapes_count", split="train", n=256, seed=0, out=tmp / "train.parquet")

    default_env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    default_env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    tuned_env = dict(default_env)
    tunables = set_malloc_tunables(tuned_env)
    envs = {"default": default_env, "tuned": tuned_env}
    print(f"policy {policy}, {args.steps} steps per job, {args.pairs} turns per setting of {args.jobs} jobs side by "
          f"side; tuned: {tunables}", flush=True)

    times: dict[str, list[dict[str, float]]] = {name: [] for name in envs}
    digests: dict[str, set[str]] = {name: set() for name in envs}
    for pair in range(args.pairs):
        for name in (("default", "tuned") if pair % 2 == 0 else ("tuned", "default")):
            outs = [tmp / f"{name}-{pair}-{job}" for job in range(args.jobs)]
            results = timed_jobs([job_command(policy, heads, data, out, args.steps) for out in outs], envs[name],
                                 [out.with_suffix(".log") for out in outs])
            for out, result in zip(outs, results):
                times[name].append(result)
                digests[name].add(weights_digest(out))
                print(f"  {name:8s} wall {result['wall']:7.2f} s  user {result['user']:7.2f} s  "
                      f"sys {result['sys']:6.2f} s", flush=True)
                shutil.rmtree(out)

    med = {name: {k: statistics.median(t[k] for t in runs) for k in ("wall", "user", "sys")}
           for name, runs in times.items()}
    for name, m in med.items():
        print(f"median {name:8s} wall {m['wall']:7.2f} s  user {m['user']:7.2f} s  sys {m['sys']:6.2f} s")
    identical = len(digests["default"] | digests["tuned"]) == 1
    shutil.rmtree(tmp)
    print(f"malloc_wall_ratio {med['tuned']['wall'] / med['default']['wall']:.3f} "
          f"sys_ratio {med['tuned']['sys'] / med['default']['sys']:.3f} identical_weights {str(identical).lower()}")


if __name__ == "__main__":
    main()
