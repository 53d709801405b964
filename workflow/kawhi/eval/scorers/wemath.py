"""WeMath (testmini): per-question accuracy, and the official four-dimensional metrics over composite
problems (``evaluation/four_dimensional_metrics.py``).

Sub-questions share the composite's ``ID``; ``key`` says which part a row is: ``2steps_1``,
``2steps_2``, ``2steps_multi``, ``3steps_1`` ... ``3steps_multi`` (one-step rows are not part of a
composite). Per composite, with the steps' correctness and the composite ("multi") question's:

* IK (insufficient knowledge): some step wrong and the composite wrong;
* IG (inadequate generalisation): every step right, the composite wrong;
* CM (complete mastery): composite right and every step right (strict) / some step right (loose);
* RM (rote memorisation): composite right and some step wrong (strict) / every step wrong (loose).

IK, IG, CM are rates over composites; RM is a rate over CM + RM; the score is
``(N - 0.5 IG - RM - IK) / N``. The official script fixes N = 525 (the full testmini); here N is the
number of complete composites present, so a ``--limit`` subset is scored consistently.

Per question (the paper: exact match), the official ``load_and_process_data`` reads the answer template
"<Answer>: B. text": the text after the last "Answer", with ``>``, ``<``, ``:`` and ``.`` removed, must
start with the option letter, which must equal the gold letter. Where that finds no letter (no
"Answer" in the response, since this project asks for ``\\boxed{}``; or "Final Answer: \\boxed{B}") the
rule-based extractor (boxed, "the answer is", option letter or text) reads it instead, where the
official script would score 0.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from kawhi.data.answers import extract_answer, parse_options
from kawhi.eval.scorers.base import Scorer, check_lengths, mean_percent, require

_KEY = re.compile(r"^(\d)steps?_(\d+|multi)$")


def composite_outcomes(rows: list[dict[str, Any]], scored: list[dict[str, Any]]) -> tuple[list[tuple[list[bool], bool]], int]:
    """(steps' correctness, composite's correctness) per complete composite; and how many composites
    were incomplete (a part missing, e.g. cut by --limit) and left out."""
    parts: dict[tuple[str, int], dict[str, bool]] = defaultdict(dict)
    for row, s in zip(rows, scored):
        m = _KEY.match(str(row.get("key", "")))
        if not m or int(m.group(1)) < 2:
            continue
        parts[(str(row["ID"]), int(m.group(1)))][m.group(2)] = s["score"] >= 1.0
    outcomes, incomplete = [], 0
    for (_, n_steps), got in sorted(parts.items()):
        needed = [str(i) for i in range(1, n_steps + 1)] + ["multi"]
        if any(k not in got for k in needed):
            incomplete += 1
            continue
        outcomes.append(([got[str(i)] for i in range(1, n_steps + 1)], got["multi"]))
    return outcomes, incomplete


def four_dimensional(outcomes: list[tuple[list[bool], bool]]) -> dict[str, float]:
    n = len(outcomes)
    count = defaultdict(int)
    for steps, multi in outcomes:
        all_right, any_right = all(steps), any(steps)
        if multi:
            count["CM_strict"] += all_right
            count["CM_loose"] += any_right
            count["RM_strict"] += not all_right
            count["RM_loose"] += not any_right
        else:
            count["IG"] += all_right
            count["IK"] += not all_right
    rate = (lambda k: 100.0 * count[k] / n) if n else (lambda k: 0.0)
    metrics = {"IK": rate("IK"), "IG": rate("IG"), "CM_strict": rate("CM_strict"), "CM_loose": rate("CM_loose")}
    for mode in ("strict", "loose"):
        denominator = count[f"CM_{mode}"] + count[f"RM_{mode}"]
        metrics[f"RM_{mode}"] = 100.0 * count[f"RM_{mode}"] / denominator if denominator else 0.0
        metrics[f"score_{mode}"] = (100.0 * (n - 0.5 * count["IG"] - count[f"RM_{mode}"] - count["IK"]) / n) if n else 0.0
    metrics["n_composites"] = float(n)
    return metrics


def template_answer(response: str) -> str | None:
    """``four_dimensional_metrics.load_and_process_data``: the option letter after the last "Answer"."""
    text = re.sub(r"[>><<:.]", "", response.split("Answer")[-1].strip()).strip()
    return text[0] if text and text[0] in "ABCDEFGH" else None


class WeMathScorer(Scorer):
    primary = "score_strict"

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        require(row, "answer", "key", "ID")
        response = response or ""
        pred = template_answer(response) if "Answer" in response else None
        if pred is None:
            pred = extract_answer(response, parse_options(row.get("option", "")) or list("ABCDE"))
            pred = pred.strip("()") if pred is not None and len(pred.strip("()")) == 1 else None
        return {"extracted": pred, "score": float(pred == str(row["answer"]))}

    def aggregate(self, rows, scored) -> dict[str, float]:
        check_lengths(rows, scored)
        outcomes, incomplete = composite_outcomes(rows, scored)
        metrics = {"accuracy": mean_percent(s["score"] for s in scored)}
        metrics.update(four_dimensional(outcomes))
        metrics["n_incomplete_composites"] = float(incomplete)
        return metrics
