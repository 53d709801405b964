"""MathVision: accuracy with boxed-answer extraction and equivalence, as the official evaluator
(``evaluation/evaluate.py``: last ``\\boxed{}`` or "answer is", option letters for multiple choice,
numeric / LaTeX equality otherwise). Equality here is math-verify's."""

from __future__ import annotations

from typing import Any

from kawhi.data.answers import extract_answer, is_equivalent, match_option
from kawhi.eval.scorers.base import Scorer, as_list, check_lengths, grouped_percent, mean_percent, require


class MathVisionScorer(Scorer):
    primary = "accuracy"

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        require(row, "answer")
        options = [str(o) for o in as_list(row.get("options"))]
        gold = str(row["answer"]).strip()
        pred = extract_answer(response, options or None)
        if options:
            return {"extracted": pred, "score": float(match_option(pred, options, gold))}
        return {"extracted": pred, "score": float(is_equivalent(pred, gold))}

    def aggregate(self, rows, scored) -> dict[str, float]:
        check_lengths(rows, scored)
        metrics = {"accuracy": mean_percent(s["score"] for s in scored)}
        metrics.update(grouped_percent([r.get("level") for r in rows], scored, "accuracy_level"))
        return metrics
