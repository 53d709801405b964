"""Manifests: the JSON lists through which the rules tell each report command what its input files are.

Each entry names one file and says what it holds (model, algorithm, variant, benchmark), so the report
never parses meaning out of paths. Light on purpose (no pandas): kawhi.report.grid, which rules/common.smk
imports, builds them.
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
    """One eval JSON and what it scores: ``algo`` is "base" for the base model (then variant is "").

    A trained checkpoint is one seed of a run: the report averages a row's seeds (the entries that differ
    only in ``seed``). ``trainset`` is the run's training data ("math" or "chart"; "" for the base model),
    ``detail`` what the variant changes against full KAWHI (kawhi.config.variant_changes), ``published``
    the paper's value for this row and benchmark where the paper has one (kawhi.report.published).
    """

    model: str
    algo: str
    variant: str
    benchmark: str
    path: str
    kawhi: bool = False  # whether the variant trains with KAWHI on (False for base and baseline)
    trainset: str = ""
    seed: int | None = None
    detail: str = ""
    published: float | None = None

    @property
    def samples_path(self) -> Path:
        return samples_path(self.path)

    @property
    def row(self) -> tuple[str, str, str, str]:
        """The table row this result belongs to: (model, trainset, algo, variant), whatever its seed."""
        return (self.model, self.trainset, self.algo, self.variant)


@dataclass(frozen=True)
class RunEntry:
    """One training run (one seed), named by its ``done.json``; ``metrics.jsonl`` and ``gallery/`` lie beside
    it. ``published`` is the paper's per-step time in seconds where it gives one (figure5)."""

    model: str
    algo: str
    variant: str
    done: str
    kawhi: bool = False
    trainset: str = ""
    seed: int | None = None
    detail: str = ""
    published: float | None = None

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
    """One model's head-identification outputs, the heads a paper published for it (config heads.published)
    and which of the two training uses (``source``: sweep or published)."""

    model: str
    ablation_csv: str
    heads_json: str
    published: tuple[int, ...] = ()
    source: str = "sweep"


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
        return [kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()})
                for row in json.loads(text)]
    except (json.JSONDecodeError, TypeError) as err:
        raise ReportInputError(f"bad {kind.__name__} manifest ({err}): {text_or_path[:200]}") from err
