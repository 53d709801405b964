"""Per-benchmark scorers, following each benchmark's official definition (docs/scoring.md says where
this project's scorer differs from the official one).

``get_scorer(name, judge=None)`` returns a :class:`~kawhi.eval.scorers.base.Scorer`:
``score_sample(row, response) -> {"extracted", "score", ...}`` for one benchmark row (the prepared
parquet's columns, as named on the hub, plus the common ``id/question/answer/options``) and
``aggregate(rows, scored) -> {metric: percent}`` over all of them (incl. ``scorer.primary``).
"""

from __future__ import annotations

import importlib

from kawhi.eval.scorers.base import Scorer

# benchmark name -> (module, class). The synthetic suites share one exact-answer scorer; the
# MME-style synthetic suite is scored as MME.
SCORERS: dict[str, tuple[str, str]] = {
    "mathvista": ("mathvista", "MathVistaScorer"),
    "mathverse": ("mathverse", "MathVerseScorer"),
    "mathvision": ("mathvision", "MathVisionScorer"),
    "wemath": ("wemath", "WeMathScorer"),
    "chartqa": ("chartqa", "ChartQAScorer"),
    "chartqapro": ("chartqapro", "ChartQAProScorer"),
    "charxiv_descriptive": ("charxiv", "CharXivDescriptiveScorer"),
    "charxiv_reasoning": ("charxiv", "CharXivReasoningScorer"),
    "chartmimic": ("chartmimic", "ChartMimicScorer"),
    "mme": ("mme", "MMEScorer"),
    "mme_synth": ("mme", "MMEScorer"),
    "shapes_count": ("synthetic", "SyntheticScorer"),
    "shapes_arith": ("synthetic", "SyntheticScorer"),
    "bars_lookup": ("synthetic", "SyntheticScorer"),
    "lines_compare": ("synthetic", "SyntheticScorer"),
}


def scorer_names() -> list[str]:
    return sorted(SCORERS)


def get_scorer(name: str, judge=None) -> Scorer:
    """The scorer of benchmark ``name``; ``judge`` (kawhi.judge.Judge) is used where the official
    scoring relies on an LLM judge, else ignored."""
    if name not in SCORERS:
        raise KeyError(f"no scorer for benchmark {name!r}; known: {', '.join(scorer_names())}")
    if isinstance(judge, dict) or judge is None:
        from kawhi.judge import build_judge

        judge = build_judge(judge, name)  # the eval.judge config block (if it scores `name`), or None
    module_name, class_name = SCORERS[name]
    module = importlib.import_module(f"kawhi.eval.scorers.{module_name}")
    return getattr(module, class_name)(name=name, judge=judge)


__all__ = ["Scorer", "SCORERS", "get_scorer", "scorer_names"]
