"""The scorer interface and the text helpers several official scorers share."""

from __future__ import annotations

import abc
import math
import re
from collections import defaultdict
from typing import Any, Iterable, Sequence

from kawhi.data.prompts import OPTION_LETTERS


class Scorer(abc.ABC):
    """One benchmark's scoring. Subclasses set ``primary`` and implement ``score_sample``; the default
    ``aggregate`` is the mean score in percent as ``accuracy``, plus, when ``group_column`` is set, the
    mean per value of that row column as ``<group_prefix>_<value>``."""

    primary: str = "accuracy"
    yes_no: bool = False
    group_column: str | None = None
    group_prefix: str = "accuracy"

    def __init__(self, name: str, judge=None) -> None:
        self.name = name
        self.judge = judge

    @abc.abstractmethod
    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        """``{"extracted": ..., "score": float in [0, 1], ...}`` for one response to ``row``."""

    def aggregate(self, rows: list[dict[str, Any]], scored: list[dict[str, Any]]) -> dict[str, float]:
        check_lengths(rows, scored)
        metrics = {"accuracy": mean_percent(s["score"] for s in scored)}
        if self.group_column is not None:
            metrics.update(grouped_percent([r.get(self.group_column) for r in rows], scored, self.group_prefix))
        return metrics

    def describe(self) -> dict[str, Any]:
        """What the result JSON records as ``scorer`` (and whether a judge was used)."""
        return {"name": self.name, "class": type(self).__name__, "primary": self.primary,
                "judge": self.judge.describe() if self.judge is not None else None}


def check_lengths(rows: list, scored: list) -> None:
    if len(rows) != len(scored):
        raise ValueError(f"aggregate: {len(rows)} rows but {len(scored)} scored samples")


def mean_percent(values: Iterable[float]) -> float:
    values = [float(v) for v in values]
    return 100.0 * sum(values) / len(values) if values else 0.0


def grouped_percent(keys: Sequence[Any], scored: list[dict[str, Any]], prefix: str) -> dict[str, float]:
    """``{prefix_<slug(key)>: mean score in percent}`` per distinct key."""
    groups: dict[str, list[float]] = defaultdict(list)
    for key, s in zip(keys, scored):
        if key is None or (isinstance(key, float) and math.isnan(key)):
            continue
        groups[slug(str(key))].append(s["score"])
    return {f"{prefix}_{k}": mean_percent(v) for k, v in sorted(groups.items())}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def require(row: dict[str, Any], *keys: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise KeyError(f"row {row.get('id', '?')!r} lacks column(s) {missing} (has {sorted(row)})")


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character each)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def letter_options(options: Sequence[str]) -> dict[str, str]:
    return {OPTION_LETTERS[i]: str(opt) for i, opt in enumerate(options)}


def to_float(text: Any) -> float | None:
    try:
        value = float(str(text).strip().replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def as_list(value: Any) -> list:
    """A hub column that holds a list (arrow list, numpy array, or a single value)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist"):
        return list(value.tolist())
    return [value]
