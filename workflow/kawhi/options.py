"""How a stage command receives its settings: a rule's ``--settings`` JSON, or a config file plus overrides.

Every stage's ``commands.py`` uses these; they live below the stages (not in ``kawhi.cli``, which
imports the stages) so that imports run one way.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """The two ways a command receives its settings: a rule's JSON, or a config file plus overrides."""
    parser.add_argument("--settings", help="settings as JSON (what the Snakemake rules pass)")
    parser.add_argument("--config", dest="config_file", default=None,
                        help="pipeline config YAML (default config/config.yaml when --settings is absent)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. --set kawhi.lam=0.3 (repeatable)")


def load_config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The validated pipeline config named by ``--config`` and ``--set``."""
    from kawhi.config import deep_merge, load_config, parse_override

    overrides: dict[str, Any] = {}
    for text in args.overrides:
        overrides = deep_merge(overrides, parse_override(text))
    return load_config(args.config_file or "config/config.yaml", overrides)


def settings_from_args(args: argparse.Namespace,
                       build: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """``--settings`` JSON if given, else ``build(config)`` over the config file with overrides."""
    if args.settings:
        return json.loads(args.settings)
    return build(load_config_from_args(args))
