"""MathVerse (testmini): accuracy overall and per ``problem_version``.

Official pipeline: a GPT extractor, then a GPT judge of equivalence against ``answer``. Here: the
option letter for multiple choice (options parsed from the question text, where MathVerse embeds
them), math-verify equivalence for free-form answers; or the configured judge.
"""

from __future__ import annotations

import re
from typing import Any

from kawhi.data.answers import extract_answer, is_equivalent
from kawhi.eval.scorers.base import Scorer, require

_CHOICE_LINE = re.compile(r"^\s*\(?([A-H])[:.)]\s*(.+?)\s*$", re.MULTILINE)


def embedded_options(question: str) -> list[str]:
    """The "A: ...", "B: ..." lines after "Choices" in a MathVerse question (empty if none)."""
    _, sep, tail = question.partition("Choices")
    found = _CHOICE_LINE.findall(tail if sep else question)
    letters = [letter for letter, _ in found]
    if letters != list("ABCDEFGH"[:len(letters)]):
        return []
    return [text for _, text in found]


class MathVerseScorer(Scorer):
    primary = "accuracy"
    group_column = "problem_version"

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        require(row, "answer", "question_type")
        gold = str(row["answer"]).strip()
        question = str(row.get("question_hub") or row.get("question") or "")
        if self.judge is not None:
            pred = self.judge.extract_answer(question, response)
            return {"extracted": pred, "score": float(self.judge.grade(question, gold, pred or ""))}
        if row["question_type"] == "multi-choice":
            options = embedded_options(question) or list("ABCDE")
            pred = extract_answer(response, options)
            return {"extracted": pred, "score": float(pred is not None and pred.strip("()").upper() == gold.upper())}
        pred = extract_answer(response)
        return {"extracted": pred, "score": float(is_equivalent(pred, gold))}
