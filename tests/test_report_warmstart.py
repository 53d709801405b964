"""The warm-start table: pass@1, pass@k and the regime check read from base eval results."""

from __future__ import annotations

import json
import math

import pytest

from kawhi.cli import main as kawhi_main
from kawhi.report.warmstart import warmstart_table


def _result(tmp_path, model, bench, pass1, pass_k, k=8, scores=(1.0, 0.0)):
    path = tmp_path / model / f"{bench}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"model": model, "benchmark": bench, "metrics": {"accuracy": pass1}, "primary": "accuracy",
           "n": len(scores), "num_samples": k, "temperature": 1.0 if k > 1 else 0.0}
    if k > 1:
        doc["pass_at_k"] = {"k": k, "metrics": {"accuracy": pass_k}, "primary": pass_k}
    path.write_text(json.dumps(doc))
    path.with_name(f"{bench}.samples.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "score": s}) + "\n"
                                                                        for i, s in enumerate(scores)))
    return path


def test_rows_in_and_out_of_the_regime(tmp_path):
    paths = [_result(tmp_path, "m", "a", 33.0, 90.0), _result(tmp_path, "m", "b", 80.0, 99.0),
             _result(tmp_path, "m", "c", 40.0, 50.0), _result(tmp_path, "m", "d", 40.0, None, k=1)]
    frame = warmstart_table(paths).set_index("benchmark")
    assert frame.loc["a", "in_regime"] and frame.loc["a", "gap"] == pytest.approx(57.0)
    assert not frame.loc["b", "in_regime"]      # pass@1 above 70
    assert not frame.loc["c", "in_regime"]      # gap of 10 points
    assert not frame.loc["d", "in_regime"] and math.isnan(frame.loc["d", "pass_k"])  # greedy: no pass@k


def test_interval_is_the_bootstrap_over_rows(tmp_path):
    scores = [1.0, 0.0] * 150
    frame = warmstart_table([_result(tmp_path, "m", "a", 50.0, 90.0, scores=scores)])
    # the bootstrap of a mean of 300 coin flips: close to the normal interval 50 +- 1.96 * 50 / sqrt(300)
    half = 100 * 1.96 * 0.5 / 300 ** 0.5
    assert frame.loc[0, "pass1_low"] == pytest.approx(50 - half, abs=0.6)
    assert frame.loc[0, "pass1_high"] == pytest.approx(50 + half, abs=0.6)


def test_command_writes_csv_and_markdown(tmp_path):
    path = _result(tmp_path, "m", "a", 33.0, 90.0)
    csv, md = tmp_path / "w.csv", tmp_path / "w.md"
    assert kawhi_main(["warmstart", "--results", str(path), "--out-csv", str(csv), "--out-md", str(md)]) == 0
    assert "in_regime" in csv.read_text() and "1 of 1 rows meet it" in md.read_text()
