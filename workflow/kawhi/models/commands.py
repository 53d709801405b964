"""``kawhi build-model`` and ``kawhi sft``: the models stage's subcommands."""

from __future__ import annotations

import argparse
import logging
from typing import Any

log = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    from kawhi.options import add_settings_arguments

    p = subparsers.add_parser(
        "build-model", help="build a tiny Qwen-VL-class model, or fetch/link a real checkpoint",
        description="Source 'tiny' (default) builds a tiny model from its transformers config class with a "
                    "locally trained tokenizer; a hub id is fetched into the Hugging Face cache and a local path "
                    "linked, so OUT becomes a link to the checkpoint.")
    p.add_argument("--arch", choices=("qwen2_5_vl", "qwen3_vl"), help="architecture (default: from settings)")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--seed", type=int, default=None, help="weight seed (default: settings' seed, else 0)")
    p.add_argument("--model", dest="model_name", default=None,
                   help="model name in the config (with --config; default: the first model of --arch)")
    add_settings_arguments(p)
    p.set_defaults(handler=build_model_command)

    p = subparsers.add_parser(
        "sft", help="SFT warm-start a model on synthetic suites (TRL SFTTrainer, completion-only loss)",
        description="Trains MODEL on the --data parquet files, measures greedy held-out accuracy per suite on "
                    "the --test files before and after, and writes model, processor and sft.json to OUT.")
    p.add_argument("--model", dest="model_dir", required=True, help="model directory to start from")
    p.add_argument("--data", nargs="+", required=True, help="training parquet file(s)")
    p.add_argument("--test", nargs="*", default=[], help="held-out parquet file(s) for the accuracy table")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--name", dest="model_name", default=None,
                   help="model name in the config, for --config (default: the first model)")
    add_settings_arguments(p)
    p.set_defaults(handler=sft_command)


def _model_settings_for(args: argparse.Namespace):
    """settings builder over a config: the named model, else the first one with --arch, else the first."""
    from kawhi.config import model_settings

    def build(config: dict[str, Any]) -> dict[str, Any]:
        name = args.model_name
        if name is None:
            matching = [m for m, spec in config["models"].items() if spec["arch"] == getattr(args, "arch", None)]
            name = (matching or list(config["models"]))[0]
        return model_settings(config, name)

    return build


def build_model_command(args: argparse.Namespace) -> int:
    from kawhi.options import settings_from_args

    if args.settings or args.config_file or args.overrides or args.model_name:
        settings = settings_from_args(args, _model_settings_for(args))
    else:
        settings = {"source": "tiny", "seed": 0}   # by hand: default sizes
    arch = args.arch or settings.get("arch")
    if arch is None:
        raise SystemExit("build-model: give --arch or settings with an 'arch'")
    if args.arch and settings.get("arch") and args.arch != settings["arch"]:
        raise SystemExit(f"build-model: --arch {args.arch} contradicts the settings' arch {settings['arch']}")
    seed = args.seed if args.seed is not None else settings.get("seed", 0)
    source = settings.get("source", "tiny")

    if source == "tiny":
        from kawhi.atomic import write_json
        from kawhi.models.tiny import build_tiny_model
        from kawhi.provenance import provenance

        out = build_tiny_model(arch=arch, out_dir=args.out, seed=seed, sizes=settings.get("tiny"),
                               image_size=settings.get("image_size", 64))
        record = {"arch": arch, "source": source, "seed": seed, "sizes": settings.get("tiny", {}),
                  "image_size": settings.get("image_size", 64), "parameters": _count_parameters(out),
                  "provenance": provenance({**settings, "arch": arch, "seed": seed}, seed=seed)}
        # Beside the weights, so the directory is the one output; loaders ignore unknown files.
        write_json(out / "build.json", record)
        log.info("tiny %s model with %d parameters in %s", arch, record["parameters"], out)
    else:
        from kawhi.models.fetch import fetch_model

        fetch_model(source, args.out, revision=settings.get("revision"))
    return 0


def _count_parameters(model_dir) -> int:
    from safetensors import safe_open

    total = 0
    for shard in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(shard), "pt") as f:
            for key in f.keys():
                total += _prod(f.get_slice(key).get_shape())
    return total


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def sft_command(args: argparse.Namespace) -> int:
    from kawhi.options import settings_from_args
    from kawhi.config import sft_settings
    from kawhi.models.sft import SFTSettings, train_sft

    def build(config: dict[str, Any]) -> dict[str, Any]:
        return sft_settings(config, args.model_name or list(config["models"])[0])

    settings = settings_from_args(args, build)
    train_sft(args.model_dir, args.data, args.out, SFTSettings.from_dict(settings), test_files=args.test,
              provenance_settings=settings)
    return 0
