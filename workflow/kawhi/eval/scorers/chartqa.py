"""ChartQA: relaxed accuracy (Methani et al.; the pix2struct / lmms-eval implementation), overall and
for the human-written and augmented (machine-generated) splits.

A prediction is right when both it and the target parse as numbers and differ by at most 5% of the
target (a number ending in "%" is divided by 100 first, and a target of 0 needs an exact string
match), or else when the strings are equal ignoring case.
"""

from __future__ import annotations

from typing import Any

from kawhi.data.answers import extract_answer
from kawhi.eval.scorers.base import Scorer, as_list, check_lengths, mean_percent

MAX_RELATIVE_CHANGE = 0.05


def _number(text: str) -> float | None:
    try:
        return float(text.rstrip("%")) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


def relaxed_correctness(target: str, prediction: str, max_relative_change: float = MAX_RELATIVE_CHANGE) -> bool:
    prediction, target = str(prediction).strip(), str(target).strip()
    p, t = _number(prediction), _number(target)
    if p is not None and t:
        return abs(p - t) / abs(t) <= max_relative_change
    return prediction.lower() == target.lower()


class ChartQAScorer(Scorer):
    primary = "relaxed_accuracy"

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        targets = [str(t) for t in as_list(row.get("label"))] or [str(row["answer"])]
        pred = extract_answer(response)
        pred = "" if pred is None else pred
        return {"extracted": pred, "score": float(any(relaxed_correctness(t, pred) for t in targets[:1]))}

    def aggregate(self, rows, scored) -> dict[str, float]:
        check_lengths(rows, scored)
        metrics = {"relaxed_accuracy": mean_percent(s["score"] for s in scored)}
        split = {0: "human", 1: "augmented"}
        for value, name in split.items():
            picked = [s["score"] for r, s in zip(rows, scored) if r.get("human_or_machine") == value]
            if picked:
                metrics[f"relaxed_accuracy_{name}"] = mean_percent(picked)
        return metrics
