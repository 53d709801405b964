"""``kawhi prepare-benchmark``: a paper benchmark (hub id or local copy) -> local parquet."""

from __future__ import annotations

import argparse
import dataclasses
import json


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare-benchmark", help="read a benchmark (hub or local path) into parquet with the common columns",
        description="Map a benchmark to the common columns (id, image, question, answer, options), keep its "
                    "original columns, and write parquet. Offline without a local copy it stops at once and "
                    "says how to pre-download the dataset.")
    p.add_argument("--name", required=True, help="benchmark name, e.g. mathvista, charxiv_reasoning, mme")
    p.add_argument("--out", required=True, help="output parquet file")
    p.add_argument("--source", help="hub dataset id or local path (default: the benchmark's hub id)")
    p.add_argument("--split", help="split (ChartMimic: the task, 'direct'); default: the paper's split")
    p.add_argument("--limit", type=int, help="keep the first N rows")
    p.add_argument("--shuffle-seed", type=int, default=None,
                   help="shuffle the source with this seed first (with --limit: a seeded random subset)")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="skip (and count) rows without image or answer instead of stopping")
    p.set_defaults(handler=run_prepare_benchmark)


def run_prepare_benchmark(args: argparse.Namespace) -> int:
    from kawhi.data.benchmarks import prepare_benchmark

    report = prepare_benchmark(args.name, args.out, source=args.source, split=args.split, limit=args.limit,
                               skip_bad_rows=args.skip_bad_rows, shuffle_seed=args.shuffle_seed)
    print(json.dumps(dataclasses.asdict(report)))
    return 0
