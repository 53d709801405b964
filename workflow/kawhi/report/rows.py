"""A table's rows: every (model, training set, algorithm, variant) averaged over its seeds.

Each row holds, per benchmark, the mean over seeds of the primary metric (what the tables print), the
per-item scores behind the intervals (kawhi.report.stats), any pass@k metrics the eval wrote, and the
paper's value where there is one. ``compare`` is the one place a difference between two rows and its
95 % interval are computed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kawhi.report.labels import method_label
from kawhi.report.manifest import BASE_ROW, EvalEntry, ReportInputError
from kawhi.report.results import primary_score, read_json
from kawhi.report.stats import (Interval, file_item_scores, mean_over_seeds, paired_differences,
                                stratified_interval)

AVG = "Avg"
PASS_AT = re.compile(r"^pass@\d+$")
# |primary - 100 x mean item score| below this: the primary metric is the per-item mean (accuracy-like)
ITEM_MEAN_TOLERANCE = 1e-4


@dataclass(frozen=True)
class BenchResult:
    """One row on one benchmark, over the row's seeds."""

    score: float                  # the primary metric (percent), mean over seeds
    seed_scores: tuple[float, ...]
    items: pd.Series              # per-item score in [0, 1]: mean over samples, then over seeds
    primary_is_item_mean: bool    # False (WeMath's composite score, MME's total): intervals are on item accuracy
    pass_at: dict[str, float]     # pass@k metrics (percent) where the eval wrote them, mean over seeds


@dataclass(frozen=True)
class Row:
    model: str
    trainset: str
    algo: str
    variant: str
    kawhi: bool
    detail: str
    seeds: tuple[int, ...]
    benches: dict[str, BenchResult]
    published: dict[str, float] = field(default_factory=dict)  # benchmark -> the paper's value

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.model, self.trainset, self.algo, self.variant)

    @property
    def is_base(self) -> bool:
        return self.algo == BASE_ROW

    @property
    def label(self) -> str:
        return method_label(self.algo, self.kawhi, self.detail)

    def score(self, column: str) -> float:
        """A benchmark's score, or the Avg over the row's benchmarks."""
        if column == AVG:
            return float(np.mean([b.score for b in self.benches.values()]))
        return self.benches[column].score

    def published_score(self, column: str) -> float | None:
        """The paper's value; for Avg the mean of the paper's values when it has every benchmark."""
        if column != AVG:
            return self.published.get(column)
        values = [self.published.get(b) for b in self.benches]
        return float(np.mean(values)) if values and None not in values else None

    def exact(self, column: str) -> bool:
        """Whether the interval of ``column`` is on the printed metric (False: on per-item accuracy)."""
        benches = self.benches.values() if column == AVG else [self.benches[column]]
        return all(b.primary_is_item_mean for b in benches)


def _bench_result(entries: list[EvalEntry]) -> BenchResult:
    seed_scores, per_seed_items, primaries_are_means, pass_at = [], [], [], {}
    for entry in entries:
        score = primary_score(entry.path)
        items = file_item_scores(entry.samples_path)
        seed_scores.append(score)
        per_seed_items.append(items)
        primaries_are_means.append(abs(score - 100.0 * items.mean()) < ITEM_MEAN_TOLERANCE)
        for key, value in read_json(entry.path).get("metrics", {}).items():
            if PASS_AT.match(key) and isinstance(value, (int, float)):
                pass_at.setdefault(key, []).append(float(value))
    return BenchResult(score=float(np.mean(seed_scores)), seed_scores=tuple(seed_scores),
                       items=mean_over_seeds(per_seed_items, [e.samples_path for e in entries]),
                       primary_is_item_mean=all(primaries_are_means),
                       pass_at={k: float(np.mean(v)) for k, v in pass_at.items() if len(v) == len(entries)})


def load_rows(entries: list[EvalEntry]) -> list[Row]:
    """The rows of ``entries`` in the order they first appear, each with every benchmark of the manifest."""
    benchmarks = list(dict.fromkeys(e.benchmark for e in entries))
    seen = [(e.row, e.seed, e.benchmark) for e in entries]
    if len(set(seen)) != len(seen):
        twice = [e.path for e, key in zip(entries, seen) if seen.count(key) > 1]
        raise ReportInputError(f"manifest lists a result twice: {twice}")
    rows = []
    for key in dict.fromkeys(e.row for e in entries):
        mine = [e for e in entries if e.row == key]
        seeds = tuple(dict.fromkeys(e.seed for e in mine))
        holes = [f"{key[0]}/{key[2]}/{key[3]}:{b}" + (f" (seed {s})" if s is not None else "")
                 for b in benchmarks for s in seeds
                 if not any(e.benchmark == b and e.seed == s for e in mine)]
        if holes:
            raise ReportInputError(f"manifest lacks eval results for {holes}")
        benches = {b: _bench_result([e for e in mine if e.benchmark == b]) for b in benchmarks}
        published = {e.benchmark: e.published for e in mine if e.published is not None}
        first = mine[0]
        rows.append(Row(model=first.model, trainset=first.trainset, algo=first.algo, variant=first.variant,
                        kawhi=first.kawhi, detail=first.detail,
                        seeds=tuple(s for s in seeds if s is not None), benches=benches, published=published))
    return rows


def compare(a: Row, b: Row) -> dict[str, Interval]:
    """Row ``a`` minus row ``b`` on every benchmark and on the Avg: the difference of the printed scores
    with the 95 % paired-bootstrap interval of the per-item difference (kawhi.report.stats)."""
    diffs = {bench: paired_differences(a.benches[bench].items, b.benches[bench].items,
                                       f"{a.model} {a.label} vs {b.label} on {bench}")
             for bench in a.benches}
    out = {}
    for column, strata in [(bench, [d]) for bench, d in diffs.items()] + [(AVG, list(diffs.values()))]:
        interval = stratified_interval(strata)
        out[column] = Interval(a.score(column) - b.score(column), interval.low, interval.high)
    return out
