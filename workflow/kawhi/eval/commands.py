"""``kawhi evaluate`` and ``kawhi score``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from kawhi.config import eval_settings
from kawhi.options import add_settings_arguments, settings_from_args


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="score one checkpoint on one or more benchmarks through lm-eval "
                                               "(the model loads once)")
    p.add_argument("--model", required=True, help="model directory (model + processor)")
    p.add_argument("--benchmark", required=True, nargs="+", help="benchmark name(s) (scorer names)")
    p.add_argument("--data", required=True, nargs="+",
                   help="benchmark parquet(s) (common columns + originals), one per --benchmark")
    p.add_argument("--out", required=True, nargs="+",
                   help="result JSON(s), one per --benchmark; each samples JSONL is written beside its JSON")
    p.add_argument("--base", action="store_true",
                   help="with --config: the base policy's settings (eval.base_num_samples draws)")
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
    import gc

    from kawhi.eval.runner import EvalSettings, evaluate_benchmarks

    if not len(args.benchmark) == len(args.data) == len(args.out):
        raise SystemExit(f"give one --data and one --out per --benchmark: {len(args.benchmark)} benchmark(s), "
                         f"{len(args.data)} data file(s), {len(args.out)} output(s)")
    if len(set(args.out)) != len(args.out):
        raise SystemExit(f"--out names a file twice: {args.out}")
    shared = settings_from_args(args, lambda config: eval_settings(config, base=args.base))
    named = shared.pop("benchmark", None)  # settings written for one benchmark name it
    if named is not None and args.benchmark != [named]:
        raise SystemExit(f"--benchmark {' '.join(args.benchmark)} disagrees with settings benchmark {named!r}")
    for key in ("backend", "limit", "batch_size", "max_new_tokens", "num_samples", "temperature"):
        value = getattr(args, key)
        if value is not None:
            shared[key] = value
    benchmarks = [(data, out, EvalSettings.from_dict({**shared, "benchmark": bench}))
                  for bench, data, out in zip(args.benchmark, args.data, args.out)]
    # lm-eval's hf backend runs gc.collect() after every batch, and each walks every object alive: most are
    # the modules of torch, transformers and lm-eval (0.2 s a call on the tiny models, 2 s of a 13 s
    # evaluation). Frozen once the model is loaded, they are left out of those collections.
    try:
        results = evaluate_benchmarks(args.model, benchmarks, model_name=args.model_name,
                                      checkpoint=args.checkpoint, after_load=gc.freeze)
    finally:
        gc.unfreeze()  # called in process (tests, notebooks), the caller's objects are collectable again
    for result in results:
        print(json.dumps({k: result[k] for k in ("benchmark", "metrics", "primary", "n", "n_skipped",
                                                "num_samples", "pass_at_k") if k in result}))
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
