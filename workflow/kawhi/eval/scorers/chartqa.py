"""ChartQA: relaxed accuracy (Methani et al.), overall and for the human-written and augmented
(machine-generated) splits, as lmms-eval's ``tasks/chartqa/utils.py`` (``relaxed_correctness``, taken
from Qwen-VL's ``evaluate_vqa.py``, the pix2struct metric) computes it.

A prediction is right when both it and the target parse as numbers and differ by at most 5% of the
target (a number ending in "%" is divided by 100 first, and a target of 0 needs an exact string
match), or else when the strings are equal ignoring case. lmms-eval asks for "a single word" and
compares the whole response; this project asks for reasoning and a ``\\boxed{}`` answer, so the
prediction is the boxed answer, else the text after "the answer is", else the whole response
(stripped). A sentence-ending period after an extracted answer is tolerated: "U.S." stays "U.S." when
it is the target, and "45." is read as "45".
"""

from __future__ import annotations

from typing import Any

import re

from kawhi.data.answers import extract_boxed
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


_ANSWER_IS = re.compile(r"(?:final\s+answer|the\s+answer)\s*(?:is|:)\s*:?\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def chartqa_prediction(response: str) -> str:
    """The boxed answer, else the last "the answer is ..." statement, else the whole response."""
    response = (response or "").strip()
    boxed = extract_boxed(response)
    if boxed is not None:
        return boxed.strip()
    said = _ANSWER_IS.findall(response)
    return said[-1].strip() if said else response


class ChartQAScorer(Scorer):
    primary = "relaxed_accuracy"

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        targets = [str(t) for t in as_list(row.get("label"))] or [str(row["answer"])]
        pred = chartqa_prediction(response)
        candidates = [pred, pred[:-1].rstrip()] if pred.endswith(".") else [pred]
        return {"extracted": pred, "score": float(any(relaxed_correctness(targets[0], p) for p in candidates))}

    def aggregate(self, rows, scored) -> dict[str, float]:
        check_lengths(rows, scored)
        metrics = {"relaxed_accuracy": mean_percent(s["score"] for s in scored)}
        split = {0: "human", 1: "augmented"}
        for value, name in split.items():
            picked = [s["score"] for r, s in zip(rows, scored) if r.get("human_or_machine") == value]
            if picked:
                metrics[f"relaxed_accuracy_{name}"] = mean_percent(picked)
        return metrics
