"""MathVista (testmini): accuracy as in the official ``calculate_score.py``.

Official pipeline: a GPT extractor pulls the answer out of the response; ``normalize_extracted_answer``
maps a multiple-choice answer to the option *text* (a letter -> its option; otherwise the option with
the smallest edit distance), rounds floats to the row's ``precision`` and ints to int; ``safe_equal``
compares with the gold ``answer``. Here the extractor is rule-based (kawhi.data.answers), or the
configured judge when one is given.
"""

from __future__ import annotations

from typing import Any

from kawhi.data.answers import extract_answer
from kawhi.eval.scorers.base import Scorer, as_list, letter_options, levenshtein, require


def normalise_extracted(extraction: str | None, choices: list[str], question_type: str, answer_type: str,
                        precision: Any) -> str | None:
    """The official normalisation of an extracted answer (see the module docstring)."""
    if extraction is None:
        return None
    extraction = str(extraction).strip()
    if question_type == "multi_choice":
        letters = letter_options(choices)
        key = extraction.strip("()").strip()
        if key.upper() in letters and len(key) == 1:
            return letters[key.upper()]
        if not choices:
            return extraction
        return min(choices, key=lambda c: levenshtein(extraction, str(c)))
    try:
        if answer_type == "integer":
            return str(int(float(extraction)))
        if answer_type == "float":
            digits = int(precision) if precision is not None and str(precision) != "nan" else 2
            return str(round(float(extraction), digits))
    except (ValueError, OverflowError):
        return None
    return extraction


class MathVistaScorer(Scorer):
    primary = "accuracy"
    group_column = "question_type"

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        require(row, "answer", "question_type", "answer_type")
        choices = [str(c) for c in as_list(row.get("choices"))]
        if self.judge is not None:
            raw = self.judge.extract_answer(row.get("question", ""), response)
        else:
            raw = extract_answer(response, choices or None)
        pred = normalise_extracted(raw, choices, row["question_type"], row["answer_type"], row.get("precision"))
        gold = str(row["answer"]).strip()
        return {"extracted": pred, "score": float(pred is not None and pred.strip() == gold)}
