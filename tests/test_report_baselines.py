"""Table 1 places the fine-grained reward baselines under their own heading, with the same changes and
intervals as every other row."""

from __future__ import annotations

import pytest

from kawhi.report.manifest import BASE_ROW, EvalEntry
from kawhi.report.output import markdown_table
from kawhi.report.tables import AVG, build_table1
from tests.report_fixtures import MATH, table1_entries, write_eval

SCORES = {"vppo": 40.0, "ft-rl": 38.0, "step-grpo": 36.0}


def _baseline_entries(root, model="m-a"):
    entries = []
    for algo, score in SCORES.items():
        for b in MATH:
            path = write_eval(root / "eval" / model / "math" / algo / "baseline" / "seed-0" / f"{b}.json", b, score,
                              model)
            entries.append(EvalEntry(model, algo, "baseline", b, str(path), False, "math", 0, ""))
    return entries


def test_table1_fine_grained_heading_and_rows(tmp_path):
    entries = table1_entries(tmp_path, models=("m-a",)) + _baseline_entries(tmp_path)
    table = build_table1(entries)
    frame = table.frame
    assert list(frame.method) == ["Base model", "Step-GRPO", "FT-RL", "VPPO", "GRPO", "GRPO+KAWHI", "DAPO",
                                  "DAPO+KAWHI", "GSPO", "GSPO+KAWHI"]
    assert list(frame.group[1:4]) == ["Fine-grained reward"] * 3 and set(frame.group[4:]) == {"Uniform reward"}
    base = frame[frame.algo == BASE_ROW].iloc[0]
    for algo, score in SCORES.items():
        row = frame[frame.algo == algo].iloc[0]
        assert row[AVG] == pytest.approx(score, abs=1e-4)
        assert row[f"{AVG} vs base"] == pytest.approx(score - base[AVG], abs=1e-4)
        assert row[f"{AVG} vs base low"] <= row[f"{AVG} vs base"] <= row[f"{AVG} vs base high"]
        assert pd_isnan(row[f"{AVG} vs algo"])  # a baseline is no KAWHI row
    md = [r[0] for r in table.md_rows]
    assert md[:6] == ["m-a · Base model", "*Fine-grained reward*", "Step-GRPO", "FT-RL", "VPPO", "*Uniform reward*"]
    assert all(len(r) == len(table.header) for r in table.md_rows)
    assert "| *Fine-grained reward* |" in markdown_table(table.header, table.md_rows)
    assert any("\\textit{Fine-grained reward}" in r[0] for r in table.tex_rows)


def test_table1_without_baselines_has_no_headings(tmp_path):
    table = build_table1(table1_entries(tmp_path, models=("m-a",)))
    assert not any(r[0].startswith("*") for r in table.md_rows) and len(table.md_rows) == len(table.frame)


def pd_isnan(x) -> bool:
    return x != x
