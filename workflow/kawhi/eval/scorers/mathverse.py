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
"""

from __future__ import annotations

import re
from typing import Any

from kawhi.data.answers import extract_answer, is_equivalent
from kawhi.eval.scorers.base import Scorer, require

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
        question = str(row.get("question_hub") or row.get("question") or "")
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
            if wanted is None:
                raise ValueError(f"MathVerse row {row.get('id')!r}: gold {gold!r} names no option of {options!r}")
            got = predicted_letters(extraction)
            return {"extracted": extraction, "score": float(got == wanted)}
        extraction = extract_answer(response)
        return {"extracted": extraction, "score": float(extraction == gold or is_equivalent(extraction, gold))}
