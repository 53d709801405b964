"""``kawhi make-data``: write one split of a synthetic suite to parquet."""

from __future__ import annotations

import argparse
import collections
import logging
from pathlib import Path

from kawhi.data.synthetic.registry import SUITES
from kawhi.data.synthetic.writer import SPLITS

log = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "make-data", help="write a synthetic suite split to parquet (datasets, Image feature kept)",
        description="Generate N pictures of a synthetic suite (MME-style suites: two yes/no rows per "
                    "picture) and write them to FILE.parquet. Same arguments, same bytes.")
    p.add_argument("--suite", required=True, choices=sorted(SUITES), help="suite name")
    p.add_argument("--split", required=True, choices=SPLITS, help="train or test (disjoint scenes)")
    p.add_argument("--n", required=True, type=int, help="number of pictures")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--out", required=True, type=Path, help="output parquet file")
    p.add_argument("--image-size", type=int, default=64, help="image side in pixels (default 64)")
    p.set_defaults(handler=make_data)


def make_data(args: argparse.Namespace) -> int:
    from kawhi.data.synthetic.writer import write_suite

    if args.n < 1:
        raise SystemExit(f"make-data: --n must be at least 1, got {args.n}")
    if args.image_size < 16:
        raise SystemExit(f"make-data: --image-size must be at least 16 px, got {args.image_size}")
    out = write_suite(suite=args.suite, split=args.split, n=args.n, seed=args.seed, out=args.out,
                      image_size=args.image_size, progress=True)
    import pyarrow.parquet as pq

    table = pq.read_table(out, columns=["category", "answer"])
    categories = collections.Counter(table.column("category").to_pylist())
    log.info("wrote %s: %d rows of %s/%s (seed %d, %d px); question types %s; chance %.1f%%",
             out, table.num_rows, args.suite, args.split, args.seed, args.image_size, dict(categories),
             SUITES[args.suite].chance)
    return 0
