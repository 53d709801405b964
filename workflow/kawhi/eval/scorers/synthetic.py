"""The synthetic suites: exact answer, by the suite's own check (``kawhi.data.synthetic.is_correct``:
boxed / "the answer is" / option letter extraction and math-verify equivalence)."""

from __future__ import annotations

from typing import Any

from kawhi.data.answers import extract_answer
from kawhi.eval.scorers.base import Scorer, as_list, require


class SyntheticScorer(Scorer):
    primary = "accuracy"

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        from kawhi.data.synthetic import is_correct

        require(row, "answer")
        row = dict(row)
        row.setdefault("suite", self.name)
        options = [str(o) for o in as_list(row.get("options"))]
        return {"extracted": extract_answer(response, options or None), "score": float(is_correct(row, response))}
