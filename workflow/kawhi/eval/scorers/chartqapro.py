"""ChartQA-Pro: the official metric, vis-nlp/ChartQAPro ``evaluate_predictions.py``
(``evaluate_predictions_chartqapro``, ``relaxed_correctness_chartqapro``, ``evaluate_single_answer``,
``fix_list_format``, ``parse_to_list``) with the ``anls`` package's ``anls_score``.

The target is the last entry of ``Answer`` (conversational rows are scored on their last turn, with the
last ``Year`` flag), both target and prediction stripped of "." and newlines at the ends. A list answer
"[a, b]" is compared element by element (the target's unquoted elements are quoted first; the
prediction counts as a list only when it is a Python list literal); a missing or extra element scores 0.
An element flagged as a year (``Year`` "YES") needs an exact, case-insensitive match; otherwise numbers
(a "%" ignored) must be within 5% (a target of 0 needs 0), and text scores its ANLS (1 - normalised edit
distance, 0 when the distance is 0.5 or more). Accuracy is the mean, overall and per ``Question Type``.

As in the official script, Multi Choice and Fact Checking answers are scored by the same rule: the
script computes an exact-match switch for them but never passes it on, and its numbers are the
published ones. The prediction is the response's ``\\boxed{}`` answer, else its "the answer is ..."
statement, else the whole response (the official prompt asks for the bare answer).
"""

from __future__ import annotations

import ast
import re
from typing import Any

from kawhi.eval.scorers.base import Scorer, as_list, levenshtein, require
from kawhi.eval.scorers.chartqa import chartqa_prediction

MAX_RELATIVE_CHANGE = 0.05
ANLS_THRESHOLD = 0.5


def fix_list_format(item: str) -> Any:
    """A "[a, b]" target with its unquoted elements quoted, evaluated to a list; else ``item``."""
    match = re.match(r"^\[(.*)\]$", item.strip())
    if not match:
        return item
    corrected = re.sub(r"(?<!['\w])(\w[^,]*?)(?!['\w])", r"'\1'", match.group(1))
    try:
        return ast.literal_eval(f"[{corrected}]")
    except (SyntaxError, ValueError):
        return item


def parse_to_list(text: str) -> list[str] | None:
    """``text`` as a list of stripped strings when it is a Python list literal, else None."""
    try:
        parsed = ast.literal_eval(text)
    except Exception:  # the official parser treats any failure (syntax, names, ...) as "not a list"
        return None
    return [str(x).strip(" '") for x in parsed] if isinstance(parsed, list) else None


def _float(text: str) -> float | None:
    try:
        return float(text.strip().strip("%"))
    except ValueError:
        return None


def anls_score(prediction: str, gold: str, threshold: float = ANLS_THRESHOLD) -> float:
    """The ``anls`` package's score of one pair: case-insensitive, runs of whitespace collapsed,
    1 - normalised Levenshtein distance when that distance is below ``threshold``, else 0."""
    p, g = " ".join(prediction.strip().lower().split()), " ".join(gold.strip().lower().split())
    length = max(len(p), len(g))
    distance = levenshtein(p, g) / length if length else 0.0
    return 1.0 - distance if distance < threshold else 0.0


def evaluate_single_answer(target: str, prediction: str, max_relative_change: float = MAX_RELATIVE_CHANGE) -> float:
    t, p = target.strip().strip("%").strip(), prediction.strip().strip("%").strip()
    t_f, p_f = _float(t), _float(p)
    if t_f is not None and p_f is not None:
        if t_f == 0.0:
            return float(p_f == 0.0)
        return float(abs(p_f - t_f) / abs(t_f) <= max_relative_change)
    return anls_score(p.lower(), t.lower())


def chartqapro_score(target: str, prediction: str, question_type: str, year_flags: list[str]) -> float:
    """One row's score (``relaxed_correctness_chartqapro`` as ``evaluate_predictions_chartqapro`` calls it)."""
    flags = [str(f) for f in year_flags] or ["NO"]  # the official script needs a flag per element
    if question_type == "Conversational":
        flags = flags[-1:]
    t_list = parse_to_list(str(fix_list_format(target))) or [str(target)]
    p_list = parse_to_list(str(prediction)) or [str(prediction)]
    if len(flags) < len(t_list):
        flags = flags * len(t_list)
    scores = []
    for i in range(max(len(t_list), len(p_list))):
        if i >= len(t_list) or i >= len(p_list):
            scores.append(0.0)
        elif flags[i].upper() == "YES":
            scores.append(float(t_list[i].strip().lower() == p_list[i].strip().lower()))
        else:
            scores.append(evaluate_single_answer(t_list[i], p_list[i]))
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
        pred = chartqa_prediction(response or "").strip(".").strip("\n")
        score = chartqapro_score(target, pred, str(row["Question Type"]), as_list(row.get("Year")))
        return {"extracted": pred, "score": score}
