"""MathVista (testmini): accuracy as the official scripts compute it (lupantech/MathVista).

1. Extraction, ``evaluation/extract_answer.py`` (``extract_answer``): an empty response extracts "";
   a multiple-choice response that is exactly one of the choices, an integer response, a float response,
   or ``The answer is "X".`` (the ``--quick_extract`` rule) extract without a model; anything else goes
   to GPT-4 with the few-shot ``demo_prompt``. Here that last step is the configured judge with the same
   prompt (the paper: Qwen3-VL-30B-A3B), or without a judge the rule-based extractor of
   kawhi.data.answers (boxed, "the answer is", option letter, last number) standing in for it.
2. ``evaluation/calculate_score.py``: ``normalize_extracted_answer`` (multiple choice: a "(X)" or bare
   letter picks that choice, else the choice nearest by edit distance; integer: ``str(int(float(x)))``;
   float: ``str(round(float(x), int(precision)))``; list: ``str(x)``) and ``safe_equal`` (``==`` with
   the gold ``answer``). Accuracy overall and per ``question_type``.
"""

from __future__ import annotations

import re
from typing import Any

from kawhi.data.answers import extract_answer
from kawhi.eval.scorers.base import Scorer, as_list, levenshtein, require

_QUICK = re.compile(r'The answer is "(.*)"\.')


def quick_extract(response: str, choices: list[str], question_type: str, answer_type: str) -> str | None:
    """The extraction ``extract_answer`` makes without a model (``quick_extract=True``); None when the
    official script would ask GPT."""
    if response == "":
        return ""
    if question_type == "multi_choice" and response in choices:
        return response
    if answer_type == "integer":
        try:
            return str(int(response))
        except ValueError:
            pass
    if answer_type == "float":
        try:
            return str(float(response))
        except ValueError:
            pass
    found = _QUICK.search(response)
    return found.group(1) if found else None


def normalize_extracted_answer(extraction: Any, choices: list[str], question_type: str, answer_type: str,
                               precision: Any) -> str | None:
    """``calculate_score.normalize_extracted_answer`` (``ignore_empty_extractions=False``)."""
    if question_type == "multi_choice":
        extraction = extraction.strip() if isinstance(extraction, str) else str(extraction)
        letter = re.findall(r"\(([a-zA-Z])\)", extraction)
        if letter:
            extraction = letter[0].upper()
        letters = [chr(ord("A") + i) for i in range(len(choices))]
        if extraction in letters:
            return choices[letters.index(extraction)]
        if not choices:
            return None
        distances = [levenshtein(extraction, choice) for choice in choices]
        return choices[distances.index(min(distances))]  # the first nearest, as get_most_similar
    try:
        if answer_type == "integer":
            return str(int(float(extraction)))
        if answer_type == "float":
            return str(round(float(extraction), int(precision)))
        if answer_type == "list":
            return str(extraction)
    except (TypeError, ValueError, OverflowError):
        return None
    return None if extraction is None else str(extraction)


class MathVistaScorer(Scorer):
    primary = "accuracy"
    group_column = "question_type"

    def extraction(self, row: dict[str, Any], response: str, choices: list[str]) -> str:
        quick = quick_extract(response, choices, row["question_type"], row["answer_type"])
        if quick is not None:
            return quick
        if self.judge is not None:
            from kawhi.eval.judge_prompts import mathvista_extract_prompt

            return self.judge.complete(mathvista_extract_prompt(str(row.get("query") or row["question"]), response))
        letters_or_text = extract_answer(response, choices or None)
        return "" if letters_or_text is None else letters_or_text

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        require(row, "answer", "question_type", "answer_type")
        choices = [str(c) for c in as_list(row.get("choices"))]
        extraction = self.extraction(row, response or "", choices)
        pred = normalize_extracted_answer(extraction, choices, row["question_type"], row["answer_type"],
                                          row.get("precision"))
        return {"extracted": extraction, "prediction": pred, "score": float(pred == str(row["answer"]))}
