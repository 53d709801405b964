"""``kawhi evaluate`` and ``kawhi score``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from kawhi.options import add_settings_arguments, settings_from_args


def eval_settings(config: dict[str, Any], benchmark: str) -> dict[str, Any]:
    """The evaluation settings of one benchmark (what rules/common.smk's get_eval_settings passes)."""
    settings = {k: v for k, v in config["eval"].items() if k != "resources"}
    settings["benchmark"] = benchmark
    settings["seed"] = config["seed"]
    return settings


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="score one checkpoint on one benchmark through lm-eval")
    p.add_argument("--model", required=True, help="model directory (model + processor)")
    p.add_argument("--benchmark", required=True, help="benchmark name (a scorer name)")
    p.add_argument("--data", required=True, help="benchmark parquet (common columns + originals)")
    p.add_argument("--out", required=True, help="result JSON; the samples JSONL is written beside it")
    p.add_argument("--backend", choices=["hf", "vllm"], help="override eval.backend")
    p.add_argument("--limit", type=int, help="override eval.limit (first N rows)")
    p.add_argument("--batch-size", type=int, help="override eval.batch_size")
    p.add_argument("--max-new-tokens", type=int, help="override eval.max_new_tokens")
    p.add_argument("--num-samples", type=int, help="override eval.num_samples (k completions per row)")
    p.add_argument("--temperature", type=float, help="override eval.temperature (0 = greedy)")
    p.add_argument("--model-name", help="model name recorded in the result (default: directory name)")
    p.add_argument("--checkpoint", help="checkpoint label recorded in the result (default: the directory)")
    add_settings_arguments(p)
    p.set_defaults(handler=run_evaluate)

    p = subparsers.add_parser("score", help="re-score a samples/predictions JSONL without a model")
    p.add_argument("--benchmark", required=True, help="benchmark name (a scorer name)")
    p.add_argument("--predictions", required=True,
                   help="JSONL: each line the row's original columns plus 'response'")
    p.add_argument("--out", help="also write the metric JSON here")
    p.add_argument("--judge", help="judge settings as JSON (default: none, or eval.judge with --config)")
    add_settings_arguments(p)
    p.set_defaults(handler=run_score)

    p = subparsers.add_parser("key-steps", help="add Step-GRPO's key-step column to a training parquet, "
                                               "extracted by the judge (R1-VL's prompt)")
    p.add_argument("--data", required=True, help="prepared training parquet (question, answer[, solution])")
    p.add_argument("--out", required=True, help="the parquet with a key_steps column")
    p.add_argument("--judge", default="{}", help="judge settings as JSON (eval.judge); {} = none configured")
    p.add_argument("--what", default="train_data", help="the config block the data comes from, for messages")
    p.set_defaults(handler=run_key_steps)


def run_key_steps(args: argparse.Namespace) -> int:
    from kawhi.data.key_steps import prepare_key_steps
    from kawhi.judge import build_judge

    judge = build_judge(json.loads(args.judge) or None)
    try:
        n = prepare_key_steps(args.data, args.out, judge.complete if judge is not None else None, args.what)
    except ValueError as err:
        raise SystemExit(str(err)) from err
    print(f"{args.out}: key steps for {n} rows")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from kawhi.eval.runner import EvalSettings, evaluate

    raw = settings_from_args(args, lambda config: eval_settings(config, args.benchmark))
    if raw.get("benchmark", args.benchmark) != args.benchmark:
        raise SystemExit(f"--benchmark {args.benchmark!r} disagrees with settings benchmark "
                         f"{raw['benchmark']!r}")
    raw["benchmark"] = args.benchmark
    for key in ("backend", "limit", "batch_size", "max_new_tokens", "num_samples", "temperature"):
        value = getattr(args, key)
        if value is not None:
            raw[key] = value
    settings = EvalSettings.from_dict(raw)
    result = evaluate(args.model, args.data, args.out, settings, model_name=args.model_name,
                      checkpoint=args.checkpoint)
    print(json.dumps({k: result[k] for k in ("benchmark", "metrics", "primary", "n", "n_skipped", "num_samples",
                                            "pass_at_k") if k in result}))
    return 0


def run_score(args: argparse.Namespace) -> int:
    from kawhi.atomic import write_json
    from kawhi.eval.rescore import score_file

    settings: dict[str, Any] = {}
    if args.settings or args.config_file or args.overrides:
        settings = settings_from_args(args, lambda config: eval_settings(config, args.benchmark))
    judge = json.loads(args.judge) if args.judge else settings.get("judge")
    result = score_file(args.benchmark, args.predictions, judge_config=judge, settings=settings)
    if args.out:
        write_json(args.out, result)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
