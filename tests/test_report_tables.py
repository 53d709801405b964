"""Tables 1 and 2 from hand-made eval JSONs: real numbers in, recomputed numbers out."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kawhi.cli import main
from kawhi.report.manifest import BASE_ROW, EvalEntry, ReportInputError, manifest_json
from kawhi.report.tables import AVG, arrow, build_table1, build_table2
from tests.report_fixtures import MATH, MODELS, table1_entries, table2_entries, write_eval


def _cli_table(tmp_path, command, entries):
    manifest = tmp_path / f"{command}.manifest.json"
    manifest.write_text(manifest_json(entries))
    outs = {ext: tmp_path / f"{command}.{ext}" for ext in ("csv", "md", "tex")}
    assert main([command, "--manifest", str(manifest), "--out-csv", str(outs["csv"]),
                 "--out-md", str(outs["md"]), "--out-tex", str(outs["tex"])]) == 0
    return outs


def test_table1_cell_recomputed_from_its_eval_json(tmp_path):
    entries = table1_entries(tmp_path)
    outs = _cli_table(tmp_path, "table1", entries)
    table = pd.read_csv(outs["csv"])

    # one cell, recomputed by hand from the files: m-b, DAPO+KAWHI, shapes_arith
    def read(model, algo, variant, bench):
        sub = "base" if algo == BASE_ROW else f"{algo}/{variant}"
        doc = json.loads((tmp_path / "eval" / model / sub / f"{bench}.json").read_text())
        return doc["metrics"][doc["primary"]]

    score = read("m-b", "dapo", "kawhi", "shapes_arith")
    base = read("m-b", BASE_ROW, "", "shapes_arith")
    own = read("m-b", "dapo", "baseline", "shapes_arith")
    row = table[(table.model == "m-b") & (table.method == "DAPO+KAWHI")].iloc[0]
    assert row["shapes_arith"] == pytest.approx(score, abs=1e-4)
    assert row["shapes_arith vs base"] == pytest.approx(score - base, abs=1e-4)
    assert row["shapes_arith vs algo"] == pytest.approx(score - own, abs=1e-4)
    avg = sum(read("m-b", "dapo", "kawhi", b) for b in MATH) / len(MATH)
    assert row[AVG] == pytest.approx(avg, abs=1e-4)
    # and the same numbers, formatted, in the Markdown and LaTeX versions
    md = outs["md"].read_text()
    assert f"{score:.2f} {score - base:+.2f} ({score - own:+.2f})" in md
    assert f"{score:.2f}\\textsubscript{{{score - base:+.2f}}} \\textbf{{({score - own:+.2f})}}" in outs["tex"].read_text()


def test_table1_rows_per_model_in_order(tmp_path):
    table = build_table1(table1_entries(tmp_path))
    frame = table.frame
    assert list(frame.model) == [m for m in MODELS for _ in range(7)]
    assert list(frame.method[:7]) == ["Base model", "GRPO", "GRPO+KAWHI", "DAPO", "DAPO+KAWHI", "GSPO",
                                      "GSPO+KAWHI"]
    assert table.header == ["Method", "shapes_count", "shapes_arith", AVG]
    assert table.group_starts == [0, 7]
    base_rows = frame[frame.algo == BASE_ROW]
    assert base_rows[f"{AVG} vs base"].isna().all()  # the base model has no delta against itself
    plain = frame[(frame.algo != BASE_ROW) & ~frame.kawhi]
    assert plain[f"{AVG} vs algo"].isna().all()  # only KAWHI rows carry the (+X.XX) over their algorithm
    assert frame[frame.kawhi][f"{AVG} vs algo"].notna().all()


def test_table1_missing_result_names_it(tmp_path):
    entries = table1_entries(tmp_path, models=MODELS[:1])
    with pytest.raises(ReportInputError, match="dapo/kawhi:shapes_arith"):
        build_table1([e for e in entries if not (e.algo == "dapo" and e.variant == "kawhi"
                                                 and e.benchmark == "shapes_arith")])
    broken = entries[3]
    json_doc = json.loads(open(broken.path).read())
    json_doc["primary"] = "nonexistent"
    open(broken.path, "w").write(json.dumps(json_doc))
    with pytest.raises(ReportInputError, match=broken.path):
        build_table1(entries)


def test_table1_needs_a_base_row(tmp_path):
    entries = [e for e in table1_entries(tmp_path, models=MODELS[:1]) if e.algo != BASE_ROW]
    with pytest.raises(ReportInputError, match="base-model row"):
        build_table1(entries)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=6, max_size=6))
def test_table1_deltas_are_differences_of_scores(tmp_path_factory, scores):
    root = tmp_path_factory.mktemp("t1")
    rows = [(BASE_ROW, ""), ("grpo", "baseline"), ("grpo", "kawhi")]
    entries = []
    for i, (algo, variant) in enumerate(rows):
        for j, bench in enumerate(MATH):
            path = write_eval(root / f"{algo}-{variant}-{bench}.json", bench, scores[2 * i + j])
            entries.append(EvalEntry("m", algo, variant, bench, str(path), variant == "kawhi"))
    frame = build_table1(entries).frame.set_index("method")
    base, plain, kawhi = (frame.loc[k] for k in ("Base model", "GRPO", "GRPO+KAWHI"))
    for col in list(MATH) + [AVG]:
        assert kawhi[f"{col} vs base"] == pytest.approx(kawhi[col] - base[col], abs=1e-9)
        assert kawhi[f"{col} vs algo"] == pytest.approx(kawhi[col] - plain[col], abs=1e-9)
    assert frame.loc["GRPO", AVG] == pytest.approx((scores[2] + scores[3]) / 2)


def test_table2_drops_against_full_kawhi(tmp_path):
    entries = table2_entries(tmp_path)
    outs = _cli_table(tmp_path, "table2", entries)
    frame = pd.read_csv(outs["csv"]).set_index("method")
    assert list(frame.index) == ["GRPO", "GRPO+KAWHI", "GRPO+KAWHI w/ random regions",
                                 "GRPO+KAWHI w/ inverse regions", "GRPO+KAWHI w/ Key-Key alignment",
                                 "GRPO+KAWHI w/ token granularity"]
    ref = frame.loc["GRPO+KAWHI"]
    for method, row in frame.iterrows():
        for bench in MATH:
            assert row[f"{bench} drop"] == pytest.approx(ref[bench] - row[bench], abs=1e-4)
    assert frame.loc["GRPO+KAWHI", f"{AVG} drop"] == 0
    assert bool(frame.loc["GRPO+KAWHI", "reference"])
    md = outs["md"].read_text()
    drop = ref["shapes_count"] - frame.loc["GRPO+KAWHI w/ inverse regions", "shapes_count"]
    assert f"↓{drop:.2f}" in md
    assert r"$\downarrow$" in outs["tex"].read_text()


def test_table2_needs_one_reference(tmp_path):
    entries = [e for e in table2_entries(tmp_path) if e.variant != "kawhi"]
    with pytest.raises(ReportInputError, match="'kawhi' row"):
        build_table2(entries)


def test_arrow_signs():
    assert arrow(1.234) == "↓1.23"
    assert arrow(-0.5) == "↑0.50"
    assert arrow(0.0) == "↓0.00"
