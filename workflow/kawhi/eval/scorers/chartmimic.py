"""ChartMimic (direct mimic): code extraction, sandboxed execution, execution rate and the official
low-level scores (text, layout, type, colour F1; kawhi.eval.scorers.chartmimic_metrics).

Both programs run in :func:`kawhi.eval.sandbox.run_sandboxed`, each once, prepared by
:func:`~kawhi.eval.scorers.chartmimic_metrics.prepare_program` (the official logging prefixes and the
official savefig handling); the records they write are what the evaluators compare. The per-sample
score is the mean of the four F1s, 0 when the generated code does not run (ChartMimic's
``get_results.ipynb``: scores of code that failed count 0 over the whole denominator). No high-level
(GPT-4o) score.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from kawhi.eval.scorers.base import Scorer, check_lengths, mean_percent
from kawhi.eval.scorers.chartmimic_metrics import ELEMENTS_FILE, LOW_LEVEL, low_level_scores, prepare_program

_FENCE = re.compile(r"```python(.*?)```", re.DOTALL)


def extract_code(response: str) -> str | None:
    """The Python program in a response: the first ```python fenced block, as the official
    ``code_checker.extract_code`` takes it; None when there is none (the official checker writes no file)."""
    blocks = _FENCE.findall(response or "")
    return blocks[0] if blocks and blocks[0].strip() else None


class ChartMimicScorer(Scorer):
    primary = "low_level"
    timeout_s, cpu_s, mem_mb = 60.0, 60, 2048

    def __init__(self, name: str, judge=None) -> None:
        super().__init__(name, judge)
        self._reference_cache: dict[str, dict[str, Any] | None] = {}

    def figure_elements(self, code: str) -> tuple[dict[str, list[str]] | None, str]:
        """(the traced elements of ``code``'s figures or None if it failed, the error tail)."""
        from kawhi.eval.sandbox import run_sandboxed

        result = run_sandboxed(prepare_program(code), timeout_s=self.timeout_s, cpu_s=self.cpu_s,
                               mem_mb=self.mem_mb, collect=(ELEMENTS_FILE,))
        if not result.ok or ELEMENTS_FILE not in result.files:
            reason = "timeout" if result.timed_out else result.stderr.strip().splitlines()[-1:] or ["failed"]
            return None, reason if isinstance(reason, str) else reason[0]
        return json.loads(result.files[ELEMENTS_FILE]), ""

    def reference_elements(self, row: dict[str, Any]) -> dict[str, list[str]]:
        code = str(row.get("answer") or row.get("GroundTruthFigureCode") or "")
        key = hashlib.sha256(code.encode()).hexdigest()
        if key not in self._reference_cache:
            self._reference_cache[key] = self.figure_elements(code)[0]
        reference = self._reference_cache[key]
        if reference is None:
            raise ValueError(f"ChartMimic row {row.get('id', '?')!r}: the reference code does not run in the sandbox")
        return reference

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        reference = self.reference_elements(row)
        code = extract_code(response)
        predicted, error = self.figure_elements(code) if code else (None, "no code in the response")
        if predicted is None:
            return {"extracted": code, "executed": False, "error": error, "score": 0.0,
                    **{k: 0.0 for k in LOW_LEVEL}}
        scores = low_level_scores(reference, predicted)
        return {"extracted": code, "executed": True, "error": "", "score": sum(scores.values()) / len(scores), **scores}

    def aggregate(self, rows, scored) -> dict[str, float]:
        check_lengths(rows, scored)
        metrics = {"low_level": mean_percent(s["score"] for s in scored),
                   "exec_rate": mean_percent(float(s["executed"]) for s in scored)}
        for key in LOW_LEVEL:
            metrics[key] = mean_percent(s[key] for s in scored)
        return metrics
