"""MME (and the MME-style synthetic suite): the official MME score, computed by
``kawhi.data.mme.mme_scores`` (the same code head identification uses).

``total``, ``perception`` and ``cognition`` are on MME's own scale (each category contributes
acc + acc+, at most 200), not percent; ``acc`` (per question) and ``acc_plus`` (per image, both
questions right) are percentages over all rows.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from kawhi.eval.scorers.base import Scorer, check_lengths, mean_percent, require
from kawhi.data.mme import mme_scores, normalise_answer, parse_yes_no


class MMEScorer(Scorer):
    primary = "total"
    yes_no = True

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        require(row, "answer")
        pred = parse_yes_no(response or "")
        gold = normalise_answer(row["answer"], f" (row {row.get('question_id', row.get('id', '?'))!r})")
        return {"extracted": pred, "score": float(pred == gold)}

    def aggregate(self, rows, scored) -> dict[str, float]:
        check_lengths(rows, scored)
        for row in rows:
            require(row, "question_id", "category", "answer")
        predicted = [{"question_id": r["question_id"], "category": r["category"], "answer": r["answer"],
                      "prediction": s["extracted"]} for r, s in zip(rows, scored)]
        official = mme_scores(predicted)
        per_image: dict[str, list[float]] = defaultdict(list)
        for r, s in zip(rows, scored):
            per_image[f"{r['category']}/{r['question_id']}"].append(s["score"])
        metrics = {"total": official["total"], "perception": official["perception"],
                   "cognition": official["cognition"], "acc": mean_percent(s["score"] for s in scored),
                   "acc_plus": mean_percent(float(all(v >= 1.0 for v in vs)) for vs in per_image.values())}
        for category, values in official["per_category"].items():
            metrics[f"score_{category}"] = values["score"]
        return metrics
