"""The statistics behind every table and figure: means over seeds and 95 % intervals by the bootstrap.

One recipe, used everywhere (tables 1 and 2, the chart table, figure 7, the selector comparison, the
summary and the landing page):

- **Per item.** A samples file holds one line per (test item, sample): the item's score is the mean
  over its samples (``eval.num_samples``; one line per item when k = 1), then the mean over the seeds
  of the run (one file per seed). Lines are grouped by ``id``.
- **A difference between two rows** (say GRPO+KAWHI against GRPO) is paired: the same items under
  both, d_i = score_A(i) - score_B(i), in percentage points. Its 95 % interval is the percentile
  interval of ``scipy.stats.bootstrap`` over the items (pooled over seeds by the averaging above).
- **An average over benchmarks** (the tables' Avg) is the mean over benchmarks of each benchmark's
  mean; the bootstrap resamples each benchmark's items independently (a stratified bootstrap), which
  is what ``scipy.stats.bootstrap`` does with one sample per benchmark and ``paired=False``.

What the interval covers: test-item sampling, given the seeds that were trained. With few seeds it
does not measure how much a retrained run would move; the tables say how many seeds each row has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from kawhi.report.manifest import ReportInputError
from kawhi.report.results import read_jsonl

CONFIDENCE = 0.95
N_RESAMPLES = 9999
BOOTSTRAP_SEED = 0  # fixed, so that the same results give the same report
BATCH = 500  # resamples drawn at once: bounds memory on benchmarks with thousands of items


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval (percentage points for score differences)."""

    estimate: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def file_item_scores(path: str | Path) -> pd.Series:
    """One samples file: each item's score averaged over its samples; index: the item ``id`` (str).

    A line needs an ``id`` and a numeric ``score``; two lines of one item must differ in ``sample_index``.
    """
    lines = read_jsonl(path)
    if not lines:
        raise ReportInputError(f"{path}: no samples")
    ids, samples, scores = [], [], []
    for lineno, line in enumerate(lines, 1):
        score = line.get("score")
        if "id" not in line or isinstance(score, str) or not isinstance(score, (int, float)) \
                or not math.isfinite(score):
            raise ReportInputError(f"{path}: line {lineno} needs an 'id' and a finite numeric 'score' "
                                   f"(id {line.get('id')!r}, score {score!r})")
        ids.append(str(line["id"]))
        samples.append(line.get("sample_index", 0))
        scores.append(float(score))
    frame = pd.DataFrame({"id": ids, "sample_index": samples, "score": scores})
    twice = frame.duplicated(["id", "sample_index"], keep=False)
    if twice.any():
        raise ReportInputError(f"{path}: item(s) {sorted(set(frame.id[twice]))[:5]} appear twice with the same "
                               f"sample_index")
    return frame.groupby("id", sort=True).score.mean()


def item_scores(paths: Sequence[str | Path]) -> pd.Series:
    """Each item's score averaged over its samples, then over the files (one per seed of a run)."""
    return mean_over_seeds([file_item_scores(p) for p in paths], paths)


def mean_over_seeds(per_seed: Sequence[pd.Series], paths: Sequence[str | Path]) -> pd.Series:
    """The item-wise mean of one run's per-seed item scores (``file_item_scores`` of ``paths``)."""
    if not per_seed:
        raise ReportInputError("no samples files given")
    first = per_seed[0]
    for path, scores in zip(paths[1:], per_seed[1:]):
        if not scores.index.equals(first.index):
            differ = sorted(set(scores.index) ^ set(first.index))[:5]
            raise ReportInputError(f"{path}: scores other test items than {paths[0]} (e.g. ids {differ})")
    return pd.concat(per_seed, axis=1).mean(axis=1)


def paired_differences(a: pd.Series, b: pd.Series, what: str) -> np.ndarray:
    """``a - b`` item by item, in percentage points; both must score the same items."""
    if not a.index.equals(b.index):
        differ = sorted(set(a.index) ^ set(b.index))[:5]
        raise ReportInputError(f"{what}: the two results score different test items (e.g. ids {differ})")
    return (a.to_numpy() - b.to_numpy()) * 100.0


def _mean_of_means(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean([np.mean(s, axis=axis) for s in samples], axis=0)


def stratified_interval(strata: Sequence[np.ndarray], *, confidence: float = CONFIDENCE,
                        n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Interval:
    """The mean over strata of each stratum's mean, with its percentile bootstrap interval.

    Each stratum (one benchmark's per-item values: paired differences, or scores) is resampled on its
    own. One stratum is the plain bootstrap of a mean.
    """
    from scipy.stats import bootstrap

    strata = [np.asarray(s, dtype=float) for s in strata]
    if not strata or any(len(s) < 2 for s in strata):
        raise ReportInputError(f"a bootstrap needs at least 2 items per benchmark (got {[len(s) for s in strata]})")
    estimate = float(_mean_of_means(*strata))
    if all(np.all(s == s[0]) for s in strata):  # no spread: every resample gives the estimate
        return Interval(estimate, estimate, estimate)
    result = bootstrap(tuple(strata), _mean_of_means, n_resamples=n_resamples, confidence_level=confidence,
                       method="percentile", vectorized=True, paired=False, batch=BATCH,
                       rng=np.random.default_rng(seed))
    return Interval(estimate, float(result.confidence_interval.low), float(result.confidence_interval.high))


def _ratio_of_means(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) / np.mean(b, axis=axis)


def ratio_interval(a: np.ndarray, b: np.ndarray, *, confidence: float = CONFIDENCE,
                   n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Interval:
    """mean(a) / mean(b) of two independent samples (e.g. step times with and without KAWHI), with its
    percentile bootstrap interval."""
    from scipy.stats import bootstrap

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2 or b.mean() == 0:
        raise ReportInputError(f"a ratio needs at least 2 values on each side and a non-zero denominator "
                               f"(got {len(a)} and {len(b)})")
    result = bootstrap((a, b), _ratio_of_means, n_resamples=n_resamples, confidence_level=confidence,
                       method="percentile", vectorized=True, paired=False, batch=BATCH,
                       rng=np.random.default_rng(seed))
    return Interval(float(a.mean() / b.mean()), float(result.confidence_interval.low),
                    float(result.confidence_interval.high))
