"""CharXiv (validation): descriptive and reasoning accuracy.

The official scorer asks GPT-4o to grade each response against the reference with per-question-type
rubrics. Without a judge this scorer grades by rule (one reading of those rubrics): the final answer
(boxed / "the answer is" / last line) matches the reference after normalising case, spacing, quotes
and a trailing period; numbers match numerically (a trailing "%" and thousands separators ignored);
comma-separated lists (legend labels, several terms) match as sets; "n by m" layouts match by their
numbers; "Not Applicable" must be said. With a judge configured, the judge grades instead.
"""

from __future__ import annotations

import re
from typing import Any

from kawhi.data.answers import extract_boxed, is_equivalent
from kawhi.eval.scorers.base import Scorer, check_lengths, grouped_percent, mean_percent, require, to_float

REASONING_SOURCES = {1: "text_in_chart", 2: "text_in_general", 3: "number_in_chart", 4: "number_in_general"}
_ANSWER_IS = re.compile(r"(?:final\s+answer|the\s+answer|answer)\s*(?:is|:)\s*:?\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def final_answer(response: str) -> str:
    """The boxed answer, else the last "answer is/:" statement, else the last non-empty line."""
    response = response or ""
    boxed = extract_boxed(response)
    if boxed is not None:
        return boxed
    said = _ANSWER_IS.findall(response)
    if said:
        return said[-1]
    lines = [line for line in response.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _norm(text: str) -> str:
    text = re.sub(r"\\text\{([^{}]*)\}", r"\1", str(text))
    text = text.strip().strip("$").strip().strip("\"'`").rstrip(".").strip()
    return re.sub(r"\s+", " ", text).lower()


def _number(text: str) -> float | None:
    return to_float(_norm(text).rstrip("%").strip())


def answers_match(gold: str, pred: str) -> bool:
    g, p = _norm(gold), _norm(pred)
    if not p:
        return False
    if g == p:
        return True
    g_num, p_num = _number(g), _number(p)
    if g_num is not None and p_num is not None:
        return abs(g_num - p_num) <= 1e-9 * max(1.0, abs(g_num))
    layout = re.fullmatch(r"(\d+)\s*(?:by|x|×)\s*(\d+)", g)
    if layout:
        m = re.fullmatch(r"(\d+)\s*(?:by|x|×)\s*(\d+)", p)
        return bool(m) and m.groups() == layout.groups()
    if "," in g:
        return {x.strip() for x in g.split(",") if x.strip()} == {x.strip() for x in p.split(",") if x.strip()}
    return g_num is None and is_equivalent(p, g) and any(ch.isdigit() for ch in g)


class _CharXivScorer(Scorer):
    primary = "accuracy"
    answer_column = ""
    question_column = ""

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        require(row, self.answer_column)
        gold = str(row[self.answer_column])
        pred = final_answer(response)
        if self.judge is not None:
            question = str(row.get("question") or row.get(self.question_column) or "")
            return {"extracted": pred, "score": float(self.judge.grade(question, gold, response))}
        return {"extracted": pred, "score": float(answers_match(gold, pred))}


class CharXivDescriptiveScorer(_CharXivScorer):
    answer_column = "descriptive_a"
    question_column = "descriptive_q"


class CharXivReasoningScorer(_CharXivScorer):
    answer_column = "reasoning_a"
    question_column = "reasoning_q"

    def aggregate(self, rows, scored) -> dict[str, float]:
        check_lengths(rows, scored)
        metrics = {"accuracy": mean_percent(s["score"] for s in scored)}
        sources = [REASONING_SOURCES.get(_int_or_none(r.get("reasoning_q_source"))) for r in rows]
        metrics.update(grouped_percent(sources, scored, "accuracy"))
        return metrics


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
