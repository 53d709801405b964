"""Scoring logged samples into the official aggregate metrics, and the result JSON they go into.

One code path for both commands: ``kawhi evaluate`` calls :func:`score_samples` on the samples lm-eval
produced (reusing the per-sample scores computed inside lm-eval), ``kawhi score`` calls it on the lines
of a samples JSONL. Per-sample scores go through the scorer's ``score_sample``; the benchmark's metrics
(percent) through its ``aggregate``, which sees every row at once (MME acc+, WeMath composites).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from kawhi.eval.tasks import LOG_KEYS, row_without_images, sample_key


class PredictionsError(ValueError):
    """A predictions line that cannot be scored (the message names the file, line and id)."""


def split_sample(line: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(benchmark row, response) of a samples line: the keys evaluation added are dropped."""
    row = {k: v for k, v in line.items() if k not in LOG_KEYS}
    return row_without_images(row), line.get("response")


def score_samples(scorer: Any, rows: list[dict[str, Any]], responses: list[str],
                  precomputed: Mapping[str, dict[str, Any]] | None = None,
                  ) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Per-sample scores and the benchmark's metrics (percent) for ``rows`` answered by ``responses``.

    ``precomputed`` maps :func:`kawhi.eval.tasks.sample_key` to a ``score_sample`` result already
    computed for that (row, response); anything missing is scored here.
    """
    if len(rows) != len(responses):
        raise ValueError(f"{len(rows)} rows but {len(responses)} responses")
    from kawhi.judge import judge_map

    precomputed = precomputed or {}

    def score(pair: tuple[dict[str, Any], str]) -> dict[str, Any]:
        result = precomputed.get(sample_key(*pair))
        return result if result is not None else scorer.score_sample(*pair)

    scored = judge_map(score, zip(rows, responses), getattr(scorer, "judge", None),
                       desc=f"judging {getattr(scorer, 'name', 'samples')}")
    metrics = {name: float(value) for name, value in scorer.aggregate(rows, scored).items()}
    return scored, metrics


def sample_line(row: dict[str, Any], prompt: str | None, response: str, scored: dict[str, Any]) -> dict[str, Any]:
    """One samples.jsonl line: the row's columns, the prompt, the response, the extraction and score."""
    clash = [k for k in LOG_KEYS if k in row]
    if clash:
        raise PredictionsError(f"benchmark row {row.get('id')!r} has column(s) {clash} that the samples log "
                               f"uses for its own fields; rename them when preparing the benchmark")
    line = dict(row)
    line.update({"prompt": prompt, "response": response, "extracted": scored.get("extracted"),
                 "score": scored.get("score"), "scoring": scored})
    return line


def read_predictions(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows and responses of a predictions JSONL (each line: the row's columns plus ``response``)."""
    rows, responses = [], []
    with open(path) as fh:
        for lineno, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError as err:
                raise PredictionsError(f"{path}:{lineno}: not JSON ({err})") from err
            row, response = split_sample(line)
            if not isinstance(response, str):
                raise PredictionsError(f"{path}:{lineno} (id {line.get('id')!r}): no 'response' string")
            rows.append(row)
            responses.append(response)
    if not rows:
        raise PredictionsError(f"{path}: no predictions")
    return rows, responses


def result_document(*, benchmark: str, scorer: Any, metrics: dict[str, float], n: int, n_skipped: int,
                    judge: Any, settings: dict[str, Any], model: str | None = None,
                    checkpoint: str | None = None, **extra: Any) -> dict[str, Any]:
    """The result JSON of one (checkpoint, benchmark): the contract every report reads."""
    from kawhi.provenance import provenance

    if scorer.primary not in metrics:
        raise ValueError(f"scorer {scorer.name!r} names primary metric {scorer.primary!r} "
                         f"but produced only {sorted(metrics)}")
    doc = {"benchmark": benchmark, "model": model, "checkpoint": checkpoint, "metrics": metrics,
           "primary": scorer.primary, "n": n, "n_skipped": n_skipped, "scorer": scorer_description(scorer),
           "judge": judge_description(judge)}
    doc.update(extra)
    doc["provenance"] = provenance(settings)
    return doc


def scorer_description(scorer: Any) -> Any:
    """The scorer's own description (name, class, primary, judge) where it gives one, else its name."""
    describe = getattr(scorer, "describe", None)
    return describe() if callable(describe) else scorer.name


def judge_description(judge: Any) -> Any:
    """What the result JSON records about the judge: None, or the judge's own description."""
    if judge is None:
        return None
    for attr in ("describe", "to_dict"):
        if callable(getattr(judge, attr, None)):
            return getattr(judge, attr)()
    if isinstance(judge, Mapping):
        return {k: v for k, v in judge.items() if "key" not in k.lower()}  # never log credentials
    return str(judge)


def score_file(benchmark: str, predictions: str | Path, judge_config: dict[str, Any] | None = None,
               settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """``kawhi score``: the result document of a predictions JSONL, scored without a model.

    ``judge_config`` is an ``eval.judge`` block (None: rule-based scoring only).
    """
    from kawhi.judge import build_judge
    from kawhi.eval.scorers import get_scorer

    judge = build_judge(judge_config, benchmark)
    scorer = get_scorer(benchmark, judge=judge)
    rows, responses = read_predictions(predictions)
    _, metrics = score_samples(scorer, rows, responses)
    settings = dict(settings or {}, benchmark=benchmark, predictions=str(predictions))
    return result_document(benchmark=benchmark, scorer=scorer, metrics=metrics, n=len(rows), n_skipped=0,
                           judge=judge, settings=settings)


def iter_jsonl(lines: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(line, default=str, ensure_ascii=False) + "\n" for line in lines)
