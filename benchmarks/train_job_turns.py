"""Whole `kawhi train` jobs under two settings, side by side and in alternating turns: shared by the benchmarks
that time a change to every job (malloc_tunables.py, lm_head_compact.py, exit_freeze.py).

The job is the embedded config's GRPO+KAWHI run (its first model, settings from config/config.yaml, ``--steps``
steps, no gallery, no checkpoints). ``--jobs`` (2) run side by side as `make run` runs them on 2 cores, ``--pairs``
turns per setting with the order alternating. Each job's wall, user and system time come from the kernel
(``os.wait4``); the medians over jobs are reported. The policy is ``results/models/<first>/sft`` of a `make run`
when there is one, else a freshly built tiny model; the heads are ``results/heads/<first>/critical_heads.json``,
else [0, 1].
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
from typing import Callable

from step_overhead import policy_dir  # benchmarks/ is sys.path[0] when a script here runs

REPO = Path(__file__).resolve().parents[1]
# one setting: (the job's `kawhi train` command -> the command to run, the environment to run it in)
Setting = tuple[Callable[[list[str]], list[str]], dict[str, str]]


def add_turn_arguments(parser: argparse.ArgumentParser, steps: int) -> None:
    parser.add_argument("--steps", type=int, default=steps, help="training steps per job")
    parser.add_argument("--pairs", type=int, default=3, help="turns per setting (order alternating)")
    parser.add_argument("--jobs", type=int, default=2, help="jobs side by side in a turn (make run: one per core)")


def job_env(malloc_thresholds: bool = True) -> dict[str, str]:
    """The jobs' environment: with the Snakefile's malloc thresholds added (kawhi/malloc.py; tunables already set
    are kept, as the Snakefile keeps them), or with ``GLIBC_TUNABLES`` removed (glibc's own defaults)."""
    from kawhi.malloc import set_malloc_tunables

    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    if malloc_thresholds:
        set_malloc_tunables(env)
    else:
        env.pop("GLIBC_TUNABLES", None)
    return env


def kawhi_run_by(code: str) -> Callable[[list[str]], list[str]]:
    """A setting's command: the job's `kawhi` arguments run by ``python -c code`` instead of the console script."""
    return lambda command: [sys.executable, "-c", code, *command[1:]]


def job_inputs(tmp: Path) -> tuple[Path, Path, Path]:
    """The policy, heads file and training data every job of a benchmark reads."""
    from kawhi.data.synthetic.writer import write_suite

    policy = policy_dir(None, "qwen2_5_vl", tmp)
    heads = next(iter(sorted(REPO.glob("results/heads/*/critical_heads.json"))), None)
    if heads is None:
        heads = tmp / "critical_heads.json"
        heads.write_text(json.dumps({"heads": [0, 1]}))
    data = write_suite(suite="shapes_count", split="train", n=256, seed=0, out=tmp / "train.parquet")
    return policy, heads, data


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


def alternate_turns(settings: dict[str, Setting], args: argparse.Namespace, on_run: Callable[[str, Path], None],
                    prefix: str) -> dict[str, dict[str, float]]:
    """Time the two ``settings`` in alternating turns, in a temporary directory named ``prefix``...;
    ``on_run(name, run_dir)`` sees each run before it is removed. Prints every job and the medians; returns the
    medians (wall, user, sys) per setting. The directory is removed at the end (kept, with the failed job's log,
    when a job fails)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    policy, heads, data = job_inputs(tmp)
    print(f"policy {policy}, {args.steps} steps per job, {args.pairs} turns per setting of {args.jobs} jobs side by "
          "side", flush=True)
    first, second = settings
    times: dict[str, list[dict[str, float]]] = {name: [] for name in settings}
    for pair in range(args.pairs):
        for name in ((first, second) if pair % 2 == 0 else (second, first)):
            command_for, env = settings[name]
            outs = [tmp / f"{name}-{pair}-{job}" for job in range(args.jobs)]
            commands = [command_for(job_command(policy, heads, data, out, args.steps)) for out in outs]
            for out, result in zip(outs, timed_jobs(commands, env, [out.with_suffix(".log") for out in outs])):
                times[name].append(result)
                on_run(name, out)
                print(f"  {name:8s} wall {result['wall']:7.2f} s  user {result['user']:7.2f} s  "
                      f"sys {result['sys']:6.2f} s", flush=True)
                shutil.rmtree(out)
    shutil.rmtree(tmp)
    medians = {name: {k: statistics.median(t[k] for t in runs) for k in ("wall", "user", "sys")}
               for name, runs in times.items()}
    for name, m in medians.items():
        print(f"median {name:8s} wall {m['wall']:7.2f} s  user {m['user']:7.2f} s  sys {m['sys']:6.2f} s")
    return medians
