"""MathVision: accuracy with boxed-answer extraction and equivalence, as the official evaluator
(``evaluation/evaluate.py``: last ``\\boxed{}`` or "answer is", option letters for multiple choice,
numeric / LaTeX equality otherwise). Equality here is math-verify's."""

from __future__ import annotations

from typing import Any

from kawhi.data.answers import extract_answer, is_equivalent, match_option
from kawhi.eval.scorers.base import Scorer, as_list, require


class MathVisionScorer(Scorer):
    primary = "accuracy"
    group_column = "level"
    group_prefix = "accuracy_level"

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        require(row, "answer")
        options = [str(o) for o in as_list(row.get("options"))]
        gold = str(row["answer"]).strip()
        pred = extract_answer(response, options or None)
        if options:
            return {"extracted": pred, "score": float(match_option(pred, options, gold))}
        return {"extracted": pred, "score": float(is_equivalent(pred, gold))}
