"""The performance summary, recomputed from hand-made eval results: significant gains and losses only."""

from __future__ import annotations

import json
from statistics import mean

import pytest

from kawhi.cli import main
from kawhi.report.manifest import BASE_ROW, EvalEntry, ReportInputError, manifest_json
from kawhi.report.summary import GAIN, LOSS, NOT_SIGNIFICANT, build_summary
from tests.report_fixtures import (
    ALGOS,
    CHART,
    MATH,
    MODELS,
    figure4_entries,
    score_of,
    table1_entries,
    write_eval,
    write_samples,
)


def test_summary_recomputes_the_average_gain_and_counts_significant_ones(tmp_path):
    entries = table1_entries(tmp_path) + figure4_entries(tmp_path, base=True)
    manifest = tmp_path / "summary.manifest.json"
    manifest.write_text(manifest_json(entries))
    out_json, out_md, out_rst = (tmp_path / f"summary.{ext}" for ext in ("json", "md", "rst"))
    assert main(["summary", "--manifest", str(manifest), "--out-json", str(out_json), "--out-md", str(out_md),
                 "--out-rst", str(out_rst)]) == 0
    summary = json.loads(out_json.read_text())

    gains = [score_of(m, a, "kawhi", b) - score_of(m, a, "baseline", b) for m in MODELS for a in ALGOS for b in MATH]
    gains += [score_of(MODELS[0], "grpo", "kawhi", b) - score_of(MODELS[0], "grpo", "baseline", b) for b in CHART]
    assert summary["n_comparisons"] == len(gains)
    assert summary["mean_gain"] == pytest.approx(mean(gains))
    assert summary["n_benchmarks"] == len(MATH) + len(CHART)
    assert summary["n_models"] == 2 and summary["n_frameworks"] == 3
    # the fixture's KAWHI rows are right on a superset of their algorithm's items: every gain is significant
    assert summary["significant_gains"] == len(gains) and summary["significant_losses"] == 0
    assert all(p["low"] > 0 for p in summary["pairs"])
    assert summary["by_framework"]["dapo"]["mean_gain"] == pytest.approx(3.0)  # fixture: 2.5 + 0.5 * 1
    assert "provenance" in summary and summary["provenance"]["config_hash"]
    # Avg comparisons: KAWHI against its algorithm and every run against the base model, per training set
    against_base = [a for a in summary["averages"] if a["against"] == "Base model"]
    assert len(against_base) == len(MODELS) * len(ALGOS) * 2 + 2
    md = out_md.read_text()
    assert f"{len(gains)} significant gains" in md and "0 significant losses" in md and "3 RL frameworks" in md
    assert "Headline results" in out_rst.read_text() and "significant gain" in out_rst.read_text()


def test_a_gain_inside_the_noise_is_not_significant(tmp_path):
    """Two rows that differ on a handful of items in both directions: the summary says so plainly."""
    entries = []
    baseline = [1, 0] * 50
    kawhi = [0, 1, 0, 1, 1, 1] + baseline[6:]  # right on 3 more items and 2 fewer: +1 item in 100
    answers = {"baseline": baseline, "kawhi": kawhi}
    for variant, items in answers.items():
        path = write_eval(tmp_path / variant / "shapes_count.json", "shapes_count", 100 * mean(items), items=None)
        write_samples(path, [{"id": f"q{i}", "score": s} for i, s in enumerate(items)])
        entries.append(EvalEntry("m", "grpo", variant, "shapes_count", str(path), variant == "kawhi", "math", 0))
    summary = build_summary(entries)
    pair = summary["pairs"][0]
    assert pair["gain"] == pytest.approx(1.0) and pair["low"] < 0 < pair["high"]
    assert pair["verdict"] == NOT_SIGNIFICANT
    assert (summary["significant_gains"], summary["significant_losses"], summary["not_significant"]) == (0, 0, 1)


def test_a_significant_loss_is_counted_as_one(tmp_path):
    entries = [e for e in table1_entries(tmp_path, models=MODELS[:1], algos=("grpo",), benches=MATH[:1])]
    swapped = []
    for e in entries:  # KAWHI's and the algorithm's results swapped: KAWHI now loses on every item it changes
        if e.algo == BASE_ROW:
            swapped.append(e)
        else:
            other = next(o for o in entries if o.algo == e.algo and o.variant != e.variant)
            swapped.append(EvalEntry(e.model, e.algo, e.variant, e.benchmark, other.path, e.kawhi, e.trainset, e.seed))
    summary = build_summary(swapped)
    assert summary["pairs"][0]["verdict"] == LOSS and summary["significant_losses"] == 1
    assert GAIN not in {p["verdict"] for p in summary["pairs"]}


def test_summary_without_pairs_is_an_error(tmp_path):
    entries = [e for e in table1_entries(tmp_path) if e.kawhi]
    with pytest.raises(ReportInputError, match="counterpart"):
        build_summary(entries)
