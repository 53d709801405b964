"""MathVerse (testmini): accuracy overall and per ``problem_version`` (ZrrSkywalker/MathVerse).

Official pipeline, two GPT steps: ``evaluation/extract_answer_s1.py`` extracts the answer with the
few-shot ``demo_prompt_extract``; ``evaluation/score_answer_s2.py`` (``match_answer``) asks GPT whether
the extraction and the gold ``answer`` are consistent (``demo_prompt_score``), or with ``--quick_match``
compares them as strings (``answer == extraction``). With a judge configured (the paper:
Qwen3-VL-30B-A3B) both steps run with those prompts.

Without a judge: the rule-based extractor of kawhi.data.answers stands in for step 1, and step 2 is the
quick match, widened where it can never succeed although the answer is the gold one: multiple choice
compares option letters, with the gold read as a letter ("B"), a bracketed letter ("(C)"), an option's
text ("False", "090^\\circ T", taken from the question's "Choices" lines) or several letters ("C\\nD");
free-form answers also match when math-verify finds them equivalent ("0.5" and "\\frac{1}{2}").
A multiple-choice gold that names no option of the question (a "Vision Only" row, whose question text is
empty, with a gold such as "False") is compared with the extraction as text, case-insensitively.

Aggregation as ``score_answer_s2.py``: accuracy overall (right / total), per ``problem_version``
(``accuracy_<version>``), per ``metadata.subject`` (``accuracy_subject_<subject>``) and per subject and
``metadata.subfield`` (``accuracy_subfield_<subject>_<subfield>``). The official script reads
``inst['category']`` although the released rows hold these under ``metadata`` (so it raises KeyError as
published); ``metadata`` is what it means.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kawhi.data.answers import extract_answer, is_equivalent
from kawhi.eval.scorers.base import Scorer, check_lengths, grouped_percent, mean_percent, require

_CHOICE_LINE = re.compile(r"^\s*\(?([A-H])\s*[:.)]\s*(.+?)\s*$", re.MULTILINE)
_CHOICES_HEADER = re.compile(r"\bChoices?\s*:", re.IGNORECASE)


def embedded_options(question: str) -> list[str]:
    """The "A: ...", "B. ..." lines after "Choices:" (or "Choice:") in a MathVerse question."""
    parts = _CHOICES_HEADER.split(question)
    found = _CHOICE_LINE.findall(parts[-1]) if len(parts) > 1 else []
    letters = [letter for letter, _ in found]
    return [text for _, text in found] if letters == list("ABCDEFGH"[:len(letters)]) else []


def gold_letters(gold: str, options: list[str]) -> frozenset[str] | None:
    """The option letter(s) a multiple-choice gold names, or None when it names none."""
    parts = [p.strip() for p in gold.strip().split("\n") if p.strip()]
    letters = set()
    for part in parts:
        bare = part.strip("()").strip()
        if len(bare) == 1 and bare.upper() in "ABCDEFGH":
            letters.add(bare.upper())
        elif part in options:
            letters.add("ABCDEFGH"[options.index(part)])
        else:
            return None
    return frozenset(letters) or None


def predicted_letters(extraction: str | None) -> frozenset[str]:
    if not extraction:
        return frozenset()
    found = re.findall(r"(?<![A-Za-z])([A-H])(?![A-Za-z])", extraction)
    return frozenset(found) if found else frozenset()


class MathVerseScorer(Scorer):
    primary = "accuracy"
    group_column = "problem_version"

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        require(row, "answer", "question_type")
        gold = str(row["answer"])
        # the hub's own question (kept as question_hub; "" on Vision Only rows), as the official prompt has it
        question = str(row["question_hub"] if "question_hub" in row else row.get("question") or "")
        if self.judge is not None:
            from kawhi.eval.judge_prompts import mathverse_extract_prompt, mathverse_score_prompt

            extraction = self.judge.complete(mathverse_extract_prompt(response or "")).strip()
            verdict = self.judge.complete(mathverse_score_prompt(question, gold, extraction))
            judgement = verdict.replace("Judgement:", "").strip()
            if judgement not in ("0", "1"):
                raise ValueError(f"MathVerse row {row.get('id')!r}: the judge answered {verdict[:200]!r}, not 0 or 1")
            return {"extracted": extraction, "score": float(judgement == "1")}
        if row["question_type"] == "multi-choice":
            options = embedded_options(question)
            extraction = extract_answer(response, options or list("ABCDE"))
            if extraction == gold:  # the official quick match
                return {"extracted": extraction, "score": 1.0}
            wanted = gold_letters(gold, options)
            if wanted is None:  # a gold that is no option (letter or text) of the question: compare as text
                same = (extraction or "").strip().rstrip(".").lower() == gold.strip().lower()
                return {"extracted": extraction, "score": float(same)}
            got = predicted_letters(extraction)
            return {"extracted": extraction, "score": float(got == wanted)}
        extraction = extract_answer(response)
        return {"extracted": extraction, "score": float(extraction == gold or is_equivalent(extraction, gold))}

    def aggregate(self, rows: list[dict[str, Any]], scored: list[dict[str, Any]]) -> dict[str, float]:
        check_lengths(rows, scored)
        metrics = {"accuracy": mean_percent(s["score"] for s in scored)}
        metrics.update(grouped_percent([r.get("problem_version") for r in rows], scored, "accuracy"))
        meta = [_metadata(r) for r in rows]
        metrics.update(grouped_percent([m.get("subject") for m in meta], scored, "accuracy_subject"))
        subfields = [f"{m['subject']} {m['subfield']}" if m.get("subject") and m.get("subfield") else None
                     for m in meta]
        metrics.update(grouped_percent(subfields, scored, "accuracy_subfield"))
        return metrics


def _metadata(row: dict[str, Any]) -> dict[str, Any]:
    """The row's ``metadata`` struct (a dict from parquet or JSON lines, or its JSON text)."""
    value = row.get("metadata")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}
