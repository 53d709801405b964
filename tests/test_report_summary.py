"""The performance summary, recomputed from hand-made eval JSONs."""

from __future__ import annotations

import json
from statistics import mean

import pytest

from kawhi.cli import main
from kawhi.report.manifest import BASE_ROW, ReportInputError, manifest_json
from kawhi.report.summary import build_summary, kawhi_pairs
from tests.report_fixtures import ALGOS, CHART, MATH, MODELS, figure4_entries, score_of, table1_entries


def test_summary_recomputes_the_average_gain(tmp_path):
    entries = [e for e in table1_entries(tmp_path) if e.algo != BASE_ROW] + figure4_entries(tmp_path)
    manifest = tmp_path / "summary.manifest.json"
    manifest.write_text(manifest_json(entries))
    out_json, out_md = tmp_path / "summary.json", tmp_path / "summary.md"
    assert main(["summary", "--manifest", str(manifest), "--out-json", str(out_json), "--out-md", str(out_md)]) == 0
    summary = json.loads(out_json.read_text())

    gains = [score_of(m, a, "kawhi", b) - score_of(m, a, "baseline", b) for m in MODELS for a in ALGOS for b in MATH]
    gains += [score_of(MODELS[0], "grpo", "kawhi", b) - score_of(MODELS[0], "grpo", "baseline", b) for b in CHART]
    assert summary["n_comparisons"] == len(gains)
    assert summary["mean_gain"] == pytest.approx(mean(gains))
    assert summary["n_benchmarks"] == len(MATH) + len(CHART)
    assert summary["n_models"] == 2 and summary["n_frameworks"] == 3
    assert summary["wins"] == len(gains)
    assert summary["by_framework"]["dapo"]["mean_gain"] == pytest.approx(3.0)  # fixture: 2.5 + 0.5 * 1
    assert "provenance" in summary and summary["provenance"]["config_hash"]
    md = out_md.read_text()
    assert f"{mean(gains):+.2f} points" in md and "3 RL frameworks" in md


def test_relative_gain_is_percent_of_the_base_algorithm(tmp_path):
    entries = [e for e in table1_entries(tmp_path, models=MODELS[:1], algos=("grpo",), benches=MATH[:1])
               if e.algo != BASE_ROW]
    pairs = kawhi_pairs(entries)
    base = score_of(MODELS[0], "grpo", "baseline", MATH[0])
    kawhi = score_of(MODELS[0], "grpo", "kawhi", MATH[0])
    assert pairs.relative_gain.iloc[0] == pytest.approx((kawhi - base) / base * 100)


def test_summary_without_pairs_is_an_error(tmp_path):
    entries = [e for e in table1_entries(tmp_path) if e.kawhi]
    with pytest.raises(ReportInputError, match="counterpart"):
        build_summary(entries)
