"""Tables 1 and 2 from hand-made eval JSONs: real numbers in, recomputed numbers out."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kawhi.cli import main
from kawhi.report.manifest import BASE_ROW, EvalEntry, ReportInputError, manifest_json
from kawhi.report.tables import AVG, build_table1, build_table2
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
        sub = "base" if algo == BASE_ROW else f"math/{algo}/{variant}/seed-0"
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
    # and the same numbers, formatted with their intervals, in the Markdown and LaTeX versions
    md = outs["md"].read_text()
    low, high = row["shapes_arith vs base low"], row["shapes_arith vs base high"]
    assert low <= score - base <= high
    assert f"{score:.2f} {score - base:+.2f} [{low:+.1f}, {high:+.1f}]" in md
    assert f"({score - own:+.2f} [" in md and "paired bootstrap" in md
    tex = outs["tex"].read_text()
    assert f"{score:.2f}\\textsubscript{{{score - base:+.2f} [{low:+.1f}, {high:+.1f}]" in tex
    assert f"\\textbf{{({score - own:+.2f} [" in tex


def test_table1_rows_per_model_in_order(tmp_path):
    table = build_table1(table1_entries(tmp_path))
    frame = table.frame
    assert list(frame.model) == [m for m in MODELS for _ in range(7)]
    assert list(frame.method[:7]) == ["Base model", "GRPO", "GRPO+KAWHI", "DAPO", "DAPO+KAWHI", "GSPO",
                                      "GSPO+KAWHI"]
    assert table.header == ["Method", "shapes_count", "shapes_arith", AVG, "Seeds"]
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


def test_table2_changes_against_full_kawhi(tmp_path):
    entries = table2_entries(tmp_path)
    outs = _cli_table(tmp_path, "table2", entries)
    frame = pd.read_csv(outs["csv"]).set_index("method")
    assert list(frame.index) == ["GRPO", "GRPO+KAWHI", "GRPO+KAWHI w/ random regions",
                                 "GRPO+KAWHI w/ inverse regions", "GRPO+KAWHI w/ Key-Key alignment",
                                 "GRPO+KAWHI w/ token granularity"]
    ref = frame.loc["GRPO+KAWHI"]
    for method, row in frame.drop(index="GRPO+KAWHI").iterrows():
        for bench in MATH:
            assert row[f"{bench} vs ref"] == pytest.approx(row[bench] - ref[bench], abs=1e-4)
            assert row[f"{bench} vs ref low"] <= row[f"{bench} vs ref"] <= row[f"{bench} vs ref high"]
    assert pd.isna(ref[f"{AVG} vs ref"]) and bool(ref["reference"])
    md = outs["md"].read_text()
    change = frame.loc["GRPO+KAWHI w/ inverse regions", "shapes_count"] - ref["shapes_count"]
    assert f"{change:+.2f} [" in md
    # the fixture's inverse regions are right on a subset of full KAWHI's items: a significant loss
    assert bool(frame.loc["GRPO+KAWHI w/ inverse regions", "shapes_count vs ref significant"])
    assert r"$^{*}$" in outs["tex"].read_text()


def test_table2_needs_one_reference(tmp_path):
    entries = [e for e in table2_entries(tmp_path) if e.variant != "kawhi"]
    with pytest.raises(ReportInputError, match="'kawhi' row"):
        build_table2(entries)


def test_seeds_are_averaged_and_counted(tmp_path):
    """A row with two seeds prints the mean of their scores, and the Seeds column says 2."""
    entries = [EvalEntry("m", BASE_ROW, "", b, str(write_eval(tmp_path / "base" / f"{b}.json", b, 40.0)))
               for b in MATH]
    for seed, score in ((0, 50.0), (1, 60.0)):
        for b in MATH:
            path = write_eval(tmp_path / f"seed-{seed}" / f"{b}.json", b, score)
            entries.append(EvalEntry("m", "grpo", "baseline", b, str(path), False, "math", seed))
    table = build_table1(entries)
    grpo = table.frame.set_index("method").loc["GRPO"]
    assert grpo["shapes_count"] == pytest.approx(55.0) and grpo["n_seeds"] == 2 and grpo["seeds"] == "0 1"
    assert grpo["shapes_count vs base"] == pytest.approx(15.0)
    assert table.md_rows[1][-1] == "2" and table.md_rows[0][-1] == "–"


def test_published_values_are_printed_beside_ours(tmp_path):
    entries = []
    for algo, variant, score, paper in ((BASE_ROW, "", 40.0, 45.0), ("grpo", "baseline", 50.0, 47.5)):
        for b in MATH:
            path = write_eval(tmp_path / f"{algo}-{b}.json", b, score)
            entries.append(EvalEntry("m", algo, variant, b, str(path), False, "" if algo == BASE_ROW else "math",
                                     None if algo == BASE_ROW else 0, "", paper))
    table = build_table1(entries)
    grpo = table.frame.set_index("method").loc["GRPO"]
    assert grpo["shapes_count paper"] == 47.5 and grpo["shapes_count vs paper"] == pytest.approx(2.5)
    assert grpo[f"{AVG} paper"] == pytest.approx(47.5)
    assert "paper 47.50 (+2.50)" in table.md_rows[1][1]
