"""``kawhi identify-heads``: the global head-ablation sweep of one model on an MME-style benchmark."""

from __future__ import annotations

import argparse
from typing import Any


def heads_settings_from_config(config: dict[str, Any]) -> dict[str, Any]:
    from kawhi.config import heads_settings

    return heads_settings(config)


def run_identify_heads(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from kawhi.options import settings_from_args
    from kawhi.heads.sweep import identify_heads

    settings = settings_from_args(args, heads_settings_from_config)
    # Explicit flags win over the settings (and are recorded in them, so provenance is truthful).
    for key in ("threshold", "top_k", "batch_size", "limit", "model"):
        value = getattr(args, key if key != "model" else "name")
        if value is not None:
            settings[key] = value
    if args.no_cache_vision:
        settings["cache_vision"] = False
    summary = identify_heads(
        model_dir=args.model, bench=args.bench, out_dir=args.out_dir,
        threshold=float(settings["threshold"]), top_k=int(settings["top_k"]),
        batch_size=int(settings.get("batch_size", 32)), limit=settings.get("limit"),
        settings=settings, model_name=settings.get("model"),
        cache_vision=bool(settings.get("cache_vision", True)),
    )
    print(f"critical heads {summary['heads']} (by {summary['selected_by']}), baseline {summary['baseline']:.2f}")
    return 0


def run_published_heads(args: argparse.Namespace) -> int:
    from kawhi.atomic import write_json
    from kawhi.provenance import provenance

    heads = sorted(set(args.heads))
    write_json(args.out, {"heads": heads, "model": args.name, "selected_by": "published",
                          "provenance": provenance({"model": args.name, "heads": heads})})
    print(f"{args.name}: published heads {heads} -> {args.out}")
    return 0


def add_commands(subparsers) -> None:
    from kawhi.options import add_settings_arguments

    p = subparsers.add_parser(
        "identify-heads", help="find the vision-critical heads by global head ablation on MME",
        description="Score the model on an MME-style benchmark, then again with each query-head index "
                    "masked in all decoder layers; write ablation.csv, critical_heads.json and figure3.")
    p.add_argument("--model", required=True, help="model directory (model + processor) or hub id")
    p.add_argument("--bench", required=True, help="MME-style benchmark: parquet file, a directory of them, or a hub id")
    p.add_argument("--out-dir", required=True, help="where ablation.csv, critical_heads.json, figure3.* go")
    p.add_argument("--name", default=None, help="model name recorded in the JSON (default: settings or dir)")
    p.add_argument("--threshold", type=float, default=None, help="MME points a head's drop must exceed (default: config heads.threshold)")
    p.add_argument("--top-k", dest="top_k", type=int, default=None,
                   help="heads kept when none passes the threshold (default: config heads.top_k)")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="questions per forward (32)")
    p.add_argument("--limit", type=int, default=None,
                   help="first N questions, rounded up to whole images (default: all)")
    p.add_argument("--no-cache-vision", action="store_true",
                   help="recompute the vision tower in every masked pass (saves the features' memory)")
    add_settings_arguments(p)
    p.set_defaults(handler=run_identify_heads)

    p = subparsers.add_parser(
        "published-heads", help="write a model's published vision-critical heads (heads.source: published)",
        description="Write the heads a paper published for a model as a critical-heads JSON that training reads "
                    "instead of the sweep's (config heads.published).")
    p.add_argument("--name", required=True, help="model name recorded in the JSON")
    p.add_argument("--heads", required=True, type=int, nargs="+", help="head indices")
    p.add_argument("--out", required=True, help="output JSON")
    p.set_defaults(handler=run_published_heads)
