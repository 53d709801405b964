"""CharXiv (validation): descriptive and reasoning accuracy.

The official scorer (princeton-nlp/CharXiv ``src/evaluate.py``) asks GPT-4o to grade each response
against the reference with a rubric per question template (``src/descriptive_utils.py``: ``get_rubric``;
``src/constants.py``: ``DESCRIPTIVE_GRADING_ICL``, ``REASONING_GRADING_INST``), and ``src/get_stats.py``
averages the 0/1 scores overall, per descriptive category (``score_utils.QNUM2QTYPE``) and per reasoning
answer type (``inst_category``, the hub's ``reasoning_a_type``) and source (``qa_source``, the hub's
``reasoning_q_source``).

Without a judge this scorer grades by rule, one reading of those rubrics: the final answer (boxed /
"the answer is" / last line) matches the reference after normalising case, spacing, quotes and a
trailing period; numbers match by value (a trailing "%" and thousands separators ignored); "n by m"
layouts match by their numbers; "Not Applicable" must be said. Comma-separated lists must match term by
term in order for the legend-labels template (descriptive q13: "The order of the terms must be the
same"), and in any order for reasoning answers ("It's also acceptable to have different orders of the
terms when question asks for multiple terms"). Paraphrases count as wrong, so expect rule-based numbers
below GPT-graded ones. With a judge configured, the judge grades instead (a generic grading prompt,
not the official rubric prompts).
"""

from __future__ import annotations

import re
from typing import Any

from kawhi.data.answers import extract_boxed, is_equivalent
from kawhi.eval.scorers.base import Scorer, check_lengths, grouped_percent, mean_percent, require, to_float

from kawhi.data.charxiv_prompts import REASONING_ANSWER_TYPES

# src/score_utils.py: IDX2SRC (reasoning_q_source) and QNUM2QTYPE (descriptive template -> category)
REASONING_SOURCES = {1: "gpt_sourced", 2: "gpt_inspired", 3: "completely_human"}
DESCRIPTIVE_CATEGORIES = {**{q: "information_extraction" for q in (1, 2, 3, 4, 5, 6, 7)},
                          **{q: "enumeration" for q in (8, 9, 13, 14, 15)},
                          **{q: "pattern_recognition" for q in (11, 16, 18)},
                          **{q: "counting" for q in (10, 12, 19)}, 17: "compositionality"}
ORDERED_LIST_TEMPLATES = frozenset({13})  # DESCRIPTIVE_GRADING_ICL['enum']: order must be the same
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


def _terms(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def answers_match(gold: str, pred: str, ordered: bool = False) -> bool:
    """Whether ``pred`` states ``gold`` (see the module docstring); ``ordered``: lists term by term."""
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
        return _terms(g) == _terms(p) if ordered else sorted(_terms(g)) == sorted(_terms(p))
    return g_num is None and is_equivalent(p, g) and any(ch.isdigit() for ch in g)


class _CharXivScorer(Scorer):
    primary = "accuracy"
    answer_column = ""
    question_column = ""

    def ordered(self, row: dict[str, Any]) -> bool:
        return False

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        require(row, self.answer_column)
        gold = str(row[self.answer_column])
        pred = final_answer(response)
        if self.judge is not None:
            question = str(row.get("question") or row.get(self.question_column) or "")
            return {"extracted": pred, "score": float(self.judge.grade(question, gold, response))}
        return {"extracted": pred, "score": float(answers_match(gold, pred, self.ordered(row)))}


class CharXivDescriptiveScorer(_CharXivScorer):
    answer_column = "descriptive_a"
    question_column = "descriptive_q"

    def ordered(self, row: dict[str, Any]) -> bool:
        return _int_or_none(row.get("qid")) in ORDERED_LIST_TEMPLATES

    def aggregate(self, rows, scored) -> dict[str, float]:
        check_lengths(rows, scored)
        metrics = {"accuracy": mean_percent(s["score"] for s in scored)}
        categories = [DESCRIPTIVE_CATEGORIES.get(_int_or_none(r.get("qid"))) for r in rows]
        metrics.update(grouped_percent(categories, scored, "accuracy"))
        return metrics


class CharXivReasoningScorer(_CharXivScorer):
    answer_column = "reasoning_a"
    question_column = "reasoning_q"

    def aggregate(self, rows, scored) -> dict[str, float]:
        check_lengths(rows, scored)
        metrics = {"accuracy": mean_percent(s["score"] for s in scored)}
        answer_types = [REASONING_ANSWER_TYPES.get(_int_or_none(r.get("reasoning_a_type"))) for r in rows]
        metrics.update(grouped_percent(answer_types, scored, "accuracy"))
        sources = [REASONING_SOURCES.get(_int_or_none(r.get("reasoning_q_source"))) for r in rows]
        metrics.update(grouped_percent(sources, scored, "accuracy_source"))
        return metrics


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
