"""``kawhi train``: one RL run (policy x algorithm x variant) into a run directory."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess

from kawhi.options import add_settings_arguments, settings_from_args
from kawhi.config import TRAINSETS

ALGORITHMS = ("grpo", "dapo", "gspo", "ft-rl", "vppo", "step-grpo")  # the grid's three and Table 1's baselines
VARIANTS = ("baseline", "kawhi", "kawhi-random", "kawhi-inverse", "kawhi-kk", "kawhi-token")

log = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="RL-train a policy with GRPO/DAPO/GSPO, with or without KAWHI",
                              description=__doc__)
    p.add_argument("--model", required=True, help="starting policy directory (model + processor)")
    p.add_argument("--model-name", default=None,
                   help="config name of the model (settings built from --config need it; default: from --settings "
                        "or the only/first model in the config)")
    p.add_argument("--algo", required=True, choices=ALGORITHMS)
    p.add_argument("--variant", required=True,
                   help=f"KAWHI variant: one of the config's variants ({', '.join(VARIANTS)} by default)")
    p.add_argument("--seed", type=int, default=None,
                   help="training seed, for settings built from --config (default: the config seed)")
    p.add_argument("--trainset", default="math", choices=TRAINSETS,
                   help="which training data the settings record, for settings built from --config (default math)")
    p.add_argument("--heads", default=None, help="critical_heads.json of the head-identification stage")
    p.add_argument("--data", required=True, nargs="+", help="training parquet file(s)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--gallery-size", type=int, default=None,
                   help="KAWHI rollouts of the last step to save (default: training.gallery_size; 0: none)")
    p.add_argument("--n-gpus", type=int, default=None,
                   help="GPUs for a distributed run (default: all visible); used when training.distributed != none")
    add_settings_arguments(p)
    p.set_defaults(handler=run_train)


def _build_settings(args: argparse.Namespace):
    from kawhi.config import train_settings

    def build(config):
        model = args.model_name or next(iter(config["models"]))
        return train_settings(config, model, args.algo, args.variant, args.seed, args.trainset)

    return settings_from_args(args, build)


def run_train(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    settings = _build_settings(args)
    if settings["algorithm"]["name"] != args.algo or settings["variant"] != args.variant:
        raise SystemExit(f"--settings are for {settings['algorithm']['name']}/{settings['variant']} but the command "
                         f"asks for {args.algo}/{args.variant}")
    distributed = settings["training"].get("distributed", "none")
    from kawhi.gpu import cuda_device_count, job_gpu_count
    from kawhi.train.launch import build_launch_command, check_launch

    n_gpus = args.n_gpus if args.n_gpus is not None else job_gpu_count()
    if distributed != "none" and n_gpus > 1 and "LOCAL_RANK" not in os.environ:
        # The parent process only launches: the same arguments, with the settings pinned, under accelerate.
        argv = ["--model", args.model, "--algo", args.algo, "--variant", args.variant, "--data", *args.data,
                "--out", args.out, "--settings", json.dumps(settings)]
        if args.gallery_size is not None:
            argv += ["--gallery-size", str(args.gallery_size)]
        if args.heads:
            argv += ["--heads", args.heads]
        command = build_launch_command(argv, n_gpus, distributed)
        check_launch(command, cuda_device_count())
        log.info("launching: %s", " ".join(command[:8]) + " ...")
        return subprocess.run(command, check=False).returncode

    from kawhi.train.run import train_run

    record = train_run(args.model, settings, args.heads, args.data, args.out, gallery_size=args.gallery_size)
    log.info("trained %s/%s for %d steps in %.1f s -> %s", args.algo, args.variant, record["steps"],
             record["wall_time_s"], args.out)
    return 0
