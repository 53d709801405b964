"""The ``kawhi`` command: one subcommand per pipeline stage.

Each stage package owns its subcommands in its own ``commands.py`` (``add_commands(subparsers)``), so
this file only assembles them. Heavy imports (torch, transformers, trl, lm-eval) happen inside the
handlers, which keeps ``kawhi --help`` fast.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
from typing import Sequence

STAGE_COMMAND_MODULES = (
    "kawhi.models.commands",   # build-model, sft
    "kawhi.data.commands",     # make-data
    "kawhi.data.benchmark_commands",  # prepare-benchmark
    "kawhi.heads.commands",    # identify-heads
    "kawhi.train.commands",    # train
    "kawhi.eval.commands",     # evaluate, score
    "kawhi.report.commands",   # table1, table2, figure1, figure3, figure4, curves, gallery, summary
)


def run_check_config(args: argparse.Namespace) -> int:
    """Every check the Snakefile runs, on config files merged in order (as ``--configfile A B`` merges
    them). Snakemake parses ``--configfile`` itself first and names no line on a YAML error; this does."""
    from kawhi.config import deep_merge, parse_override, read_config_file, validate_config

    config: dict[str, Any] = {}
    for path in args.files:
        config = deep_merge(config, read_config_file(path))
    for text in args.overrides:
        config = deep_merge(config, parse_override(text))
    validate_config(config)
    print(f"config ok: {', '.join(args.files)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kawhi", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = subparsers.add_parser("check-config", help="run every config check the Snakefile runs")
    check.add_argument("files", nargs="+", help="config YAML file(s), merged in order")
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    check.set_defaults(handler=run_check_config)
    for module_name in STAGE_COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue  # a stage not built yet
        module.add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from kawhi.config import ConfigError

    try:
        return int(args.handler(args) or 0)
    except ConfigError as err:
        if args.verbose:
            raise
        # the message names the key; the traceback (and the schema snakemake prints) would bury it
        print(f"kawhi {args.command}: {err}", file=sys.stderr)
        return 2


def run() -> None:
    """The ``kawhi`` command: ``main()``, then an exit that skips the interpreter's last garbage collections."""
    code = main()
    # A job leaves ~470k objects in ~4,000 modules (torch, transformers, TRL, lm-eval). Python's shutdown walks
    # them in its final collections: ~1.3 s of every job, ~1 s of a 15 s evaluation job
    # (benchmarks/exit_freeze.py). The collector skips frozen objects. atexit handlers, stream flushes and
    # reference-count finalizers still run, and the OS takes the memory back either way.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
