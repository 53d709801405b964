"""ChartQA-Pro: the official ``evaluate_predictions.py`` metric.

The target is the last entry of ``Answer`` (conversational rows are scored on their last turn).
Per element (a "[a, b]" list answer is compared element by element, a length mismatch scoring 0):
exact match (case-insensitive) when the row's ``Year`` flag says the element is a year, or for
"Multi Choice" and "Fact Checking" questions; otherwise a number within 5% relative error (0 needs 0),
else ANLS (threshold 0.5). Accuracy is the mean, overall and per ``Question Type``.

Note: the official script computes the exact-match switch for multiple choice / fact checking but does
not pass it on (those rows fall through to the 5% / ANLS rule); this scorer applies it, as the paper
describes.
"""

from __future__ import annotations

import ast
from typing import Any

from kawhi.data.answers import extract_answer
from kawhi.eval.scorers.base import Scorer, anls, as_list, require

EXACT_TYPES = ("Multi Choice", "Fact Checking")


def parse_list(text: str) -> list[str] | None:
    """A "[a, b]" answer as its elements (quoted or not); None when ``text`` is not a list."""
    text = str(text).strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    try:
        value = ast.literal_eval(text)
        if isinstance(value, list):
            return [str(v).strip(" '\"") for v in value]
    except (SyntaxError, ValueError):
        pass
    return [part.strip(" '\"") for part in text[1:-1].split(",")]


def _number(text: str) -> float | None:
    try:
        return float(text.strip().strip("%"))
    except ValueError:
        return None


def element_score(target: str, prediction: str, exact: bool) -> float:
    t, p = target.strip(), prediction.strip()
    if exact:
        return float(t.lower() == p.lower())
    t_num, p_num = _number(t.strip("%").strip()), _number(p.strip("%").strip())
    if t_num is not None and p_num is not None:
        if t_num == 0.0:
            return float(p_num == 0.0)
        return float(abs(p_num - t_num) / abs(t_num) <= 0.05)
    return anls(p.lower(), t.lower(), threshold=0.5)


def chartqapro_score(target: str, prediction: str, question_type: str, year_flags: list[str]) -> float:
    targets = parse_list(target) or [target]
    predictions = parse_list(prediction) or [prediction]
    flags = [str(f) for f in year_flags] or ["NO"]
    if question_type == "Conversational":
        flags = flags[-1:]
    if len(flags) < len(targets):
        flags = flags * len(targets)
    scores = []
    for i in range(max(len(targets), len(predictions))):
        if i >= len(targets) or i >= len(predictions):
            scores.append(0.0)
            continue
        exact = flags[i].upper() == "YES" or question_type in EXACT_TYPES
        scores.append(element_score(targets[i], predictions[i], exact))
    return sum(scores) / len(scores) if scores else 0.0


class ChartQAProScorer(Scorer):
    primary = "accuracy"
    group_column = "Question Type"

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        require(row, "Answer", "Question Type")
        answers = [str(a) for a in as_list(row["Answer"])]
        if not answers:
            raise ValueError(f"ChartQA-Pro row {row.get('id', '?')!r} has an empty Answer list")
        target = answers[-1].strip(".").strip("\n")
        pred = extract_answer(response)
        pred = ("" if pred is None else pred).strip(".").strip("\n")
        score = chartqapro_score(target, pred, str(row["Question Type"]), as_list(row.get("Year")))
        return {"extracted": pred, "score": score}
