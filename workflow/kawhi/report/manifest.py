"""Manifests: the JSON lists through which the rules tell each report command what its input files are.

Each entry names one file and says what it holds (model, algorithm, variant, benchmark), so the report
never parses meaning out of paths. Light on purpose (no pandas): rules/common.smk imports it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, TypeVar

BASE_ROW = "base"  # the `algo` of the untrained (or warm-started) policy in a manifest


class ReportInputError(ValueError):
    """An input file that is missing, malformed, or lacks what the report needs; names the file."""


@dataclass(frozen=True)
class EvalEntry:
    """One eval JSON and what it scores: ``algo`` is "base" for the base model (then variant is "")."""

    model: str
    algo: str
    variant: str
    benchmark: str
    path: str
    kawhi: bool = False  # whether the variant trains with KAWHI on (False for base and baseline)

    @property
    def samples_path(self) -> Path:
        return samples_path(self.path)


@dataclass(frozen=True)
class RunEntry:
    """One training run, named by its ``done.json``; its ``metrics.jsonl`` and ``gallery/`` lie beside it."""

    model: str
    algo: str
    variant: str
    done: str
    kawhi: bool = False

    @property
    def run_dir(self) -> Path:
        return Path(self.done).parent

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    @property
    def gallery_dir(self) -> Path:
        return self.run_dir / "gallery"


@dataclass(frozen=True)
class HeadsEntry:
    """One model's head-identification outputs."""

    model: str
    ablation_csv: str
    heads_json: str


def samples_path(eval_json: str | Path) -> Path:
    """The per-sample log written beside an eval JSON: ``{bench}.json`` -> ``{bench}.samples.jsonl``."""
    p = Path(eval_json)
    return p.with_name(p.name.removesuffix(".json") + ".samples.jsonl")


def manifest_json(entries: Iterable) -> str:
    """Canonical JSON (sorted keys, no spaces) so that an unchanged manifest is an unchanged param."""
    return json.dumps([asdict(e) for e in entries], sort_keys=True, separators=(",", ":"))


T = TypeVar("T")


def parse_manifest(text_or_path: str, kind: type[T] = EvalEntry) -> list[T]:
    """Entries of ``kind`` from a manifest given inline as JSON (what rules pass) or as a file path."""
    text = text_or_path
    if not text.lstrip().startswith("["):
        path = Path(text_or_path)
        if not path.exists():
            raise ReportInputError(f"manifest is neither a JSON list nor an existing file: {text_or_path!r}")
        text = path.read_text()
    try:
        return [kind(**row) for row in json.loads(text)]
    except (json.JSONDecodeError, TypeError) as err:
        raise ReportInputError(f"bad {kind.__name__} manifest ({err}): {text_or_path[:200]}") from err
