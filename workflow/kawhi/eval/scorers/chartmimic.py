"""ChartMimic (direct mimic): code extraction, sandboxed execution, execution rate and the official
low-level scores (text, layout, type, colour F1; kawhi.eval.scorers.chartmimic_metrics).

Both programs run in :func:`kawhi.eval.sandbox.run_sandboxed`, each once, prepared by
:func:`~kawhi.eval.scorers.chartmimic_metrics.prepare_program` (the official logging prefixes and the
official savefig handling); the records they write are what the evaluators compare. The per-sample
score is the mean of the four F1s, 0 when the generated code does not run (ChartMimic's
``get_results.ipynb``: scores of code that failed count 0 over the whole denominator). No high-level
(GPT-4o) score.

The execution side: each program runs alone in the sandbox, which shows it neither the host's processes
nor its files, so the code under test never sees the reference. The tracer sends one JSON record through
the sandbox's result channel, never a file of the box. Since the program could write that channel too,
:func:`parse_elements` accepts only one record of exactly the tracer's shape and bounded size; anything
else, like a program that fails or a reference that does not run, scores 0 with the reason in ``error``
and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from kawhi.eval.scorers.base import Scorer, check_lengths, mean_percent
from kawhi.eval.scorers.chartmimic_metrics import LOW_LEVEL, low_level_scores, prepare_program

MAX_ITEMS, MAX_ITEM_CHARS = 20_000, 2_000
_LAYOUT_KEYS = {"nrows", "ncols", "row_start", "row_end", "col_start", "col_end"}
_FENCE = re.compile(r"```python(.*?)```", re.DOTALL)


def extract_code(response: str) -> str | None:
    """The Python program in a response: the first ```python fenced block, as the official
    ``code_checker.extract_code`` takes it; None when there is none (the official checker writes no file)."""
    blocks = _FENCE.findall(response or "")
    return blocks[0] if blocks and blocks[0].strip() else None


def _strings(items: Any) -> bool:
    return (isinstance(items, list) and len(items) <= MAX_ITEMS
            and all(isinstance(x, str) and len(x) <= MAX_ITEM_CHARS for x in items))


def parse_elements(raw: bytes) -> dict[str, Any]:
    """The tracer's record, checked strictly: one JSON object with exactly ``texts`` and ``colors``
    (lists of bounded strings), ``chart_types`` (name -> count), ``layout`` (subplot-grid records) and
    ``n_axes``. Raises ValueError saying what is wrong."""
    if not raw:
        raise ValueError("no elements: the program ended before the tracer wrote its records")
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"malformed elements: {err}") from None
    keys = {"texts", "chart_types", "colors", "layout", "n_axes"}
    if not isinstance(record, dict) or set(record) != keys:
        raise ValueError(f"malformed elements: expected one object with exactly the keys {sorted(keys)}")
    for key in ("texts", "colors"):
        if not _strings(record[key]):
            raise ValueError(f"malformed elements: {key!r} must be a list of at most {MAX_ITEMS} strings "
                             f"of at most {MAX_ITEM_CHARS} characters")
    types = record["chart_types"]
    if not (isinstance(types, dict) and len(types) <= MAX_ITEMS
            and all(isinstance(k, str) and len(k) <= MAX_ITEM_CHARS and type(v) is int and v >= 0
                    for k, v in types.items())):
        raise ValueError("malformed elements: 'chart_types' must map names to counts")
    layout = record["layout"]
    if not (isinstance(layout, list) and len(layout) <= MAX_ITEMS
            and all(isinstance(r, dict) and set(r) == _LAYOUT_KEYS and all(type(v) is int for v in r.values())
                    for r in layout)):
        raise ValueError(f"malformed elements: 'layout' must be a list of records with {sorted(_LAYOUT_KEYS)}")
    if type(record["n_axes"]) is not int or record["n_axes"] < 0:
        raise ValueError("malformed elements: 'n_axes' must be a count")
    return record


class ChartMimicScorer(Scorer):
    primary = "low_level"
    timeout_s, cpu_s, mem_mb = 60.0, 60, 2048

    def __init__(self, name: str, judge=None) -> None:
        super().__init__(name, judge)
        self._reference_cache: dict[str, tuple[dict[str, Any] | None, str]] = {}
        self._font_cache: dict[str, bytes] | None = None

    def font_cache(self) -> dict[str, bytes]:
        """matplotlib's font list, built once by a trusted sandbox run and copied into every later box
        (saves the font scan, ~0.4 s, per program)."""
        from kawhi.eval.sandbox import run_sandboxed

        if self._font_cache is None:
            result = run_sandboxed("import matplotlib.font_manager\n", collect=(".mplconfig/fontlist-*.json",),
                                   timeout_s=self.timeout_s)
            self._font_cache = result.files if result.ok else {}
        return self._font_cache

    def figure_elements(self, code: str) -> tuple[dict[str, Any] | None, str]:
        """(the traced records of ``code``'s figure, "") or (None, why there are none)."""
        from kawhi.eval.sandbox import run_sandboxed

        result = run_sandboxed(prepare_program(code), timeout_s=self.timeout_s, cpu_s=self.cpu_s,
                               mem_mb=self.mem_mb, files=self.font_cache())
        if not result.ok:
            return None, result.reason or "failed"
        if result.channel_overflow:
            return None, "malformed elements: larger than the sandbox's result channel"
        try:
            return parse_elements(result.channel), ""
        except ValueError as err:
            return None, str(err)

    def reference_elements(self, row: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """The reference program's records (cached by code), or (None, why it does not run)."""
        code = str(row.get("answer") or row.get("GroundTruthFigureCode") or "")
        key = hashlib.sha256(code.encode()).hexdigest()
        if key not in self._reference_cache:
            self._reference_cache[key] = self.figure_elements(code)
        return self._reference_cache[key]

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        code = extract_code(response)
        reference, reference_error = self.reference_elements(row)
        if reference is None:
            predicted, error = None, f"reference of row {row.get('id', '?')!r} does not run in the sandbox: {reference_error}"
        else:
            predicted, error = self.figure_elements(code) if code else (None, "no code in the response")
        if predicted is None:
            return {"extracted": code, "executed": False, "error": error, "score": 0.0,
                    "reference_failed": reference is None, **{k: 0.0 for k in LOW_LEVEL}}
        scores = low_level_scores(reference, predicted, example_id=row.get("id"))
        return {"extracted": code, "executed": True, "error": "", "score": sum(scores.values()) / len(scores),
                "reference_failed": False, **scores}

    def aggregate(self, rows, scored) -> dict[str, float]:
        check_lengths(rows, scored)
        metrics = {"low_level": mean_percent(s["score"] for s in scored),
                   "exec_rate": mean_percent(float(s["executed"]) for s in scored),
                   "n_reference_failed": float(sum(bool(s.get("reference_failed")) for s in scored))}
        for key in LOW_LEVEL:
            metrics[key] = mean_percent(s[key] for s in scored)
        return metrics
