"""Figure 1 from hand-made samples logs over real synthetic rows: counts recomputed with the classifier."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from PIL import Image

from kawhi.cli import main
from kawhi.data.prompts import format_target
from kawhi.data.synthetic import classify_error
from kawhi.report.figure1 import (
    CATEGORIES,
    error_distribution,
    highlighted_lines,
    parse_judge_category,
)
from kawhi.report.manifest import BASE_ROW, EvalEntry, manifest_json
from tests.report_fixtures import write_eval, write_samples

OTHER_COLOR = {"red": "blue", "blue": "green", "green": "yellow", "yellow": "red"}


def _responses(row: dict) -> list[tuple[str, float]]:
    """(response, score) variants of one row: right, a misread colour, answer only, a wrong sum."""
    right = format_target(row["solution"], row["answer"])
    out = [(right, 1.0), ("The answer is \\boxed{99}.", 0.0)]
    shape = re.search(r"Shape: ([a-z]+)\.", row["solution"])
    if shape and shape.group(1) in OTHER_COLOR:
        misread = row["solution"].replace(f"Shape: {shape.group(1)}.", f"Shape: {OTHER_COLOR[shape.group(1)]}.", 1)
        out.append((format_target(misread, "99"), 0.0))
    sums = re.search(r"= (\d+)\.", row["solution"])
    if sums:
        wrong = str(int(sums.group(1)) + 1)
        out.append((format_target(row["solution"].replace(f"= {sums.group(1)}.", f"= {wrong}."), wrong), 0.0))
    return out


@pytest.fixture
def synthetic_results(tmp_path, suite_factory):
    """Base-model samples logs of two models on shapes_arith, with known wrong answers."""
    data = suite_factory("shapes_arith", "test", n=12, seed=0)
    rows = [{k: v for k, v in r.items() if k != "image"} for r in pd.read_parquet(data).to_dict("records")]
    for r in rows:
        r["options"] = list(r["options"]) if r["options"] is not None else None
    entries = []
    for model in ("m-a", "m-b"):
        lines = [{**row, "prompt": "p", "response": resp, "extracted": None, "score": score}
                 for row in rows for resp, score in _responses(row)]
        path = write_eval(tmp_path / "eval" / model / "base" / "shapes_arith.json", "shapes_arith", 40.0, model)
        write_samples(path, lines)
        entries.append(EvalEntry(model, BASE_ROW, "", "shapes_arith", str(path)))
    return entries, data, lines


def test_counts_are_the_classifier_on_wrong_answers(synthetic_results):
    entries, _, lines = synthetic_results
    expected = {c: 0 for c in CATEGORIES}
    for line in lines:
        if line["score"] < 1:
            category = classify_error(line, line["response"])
            expected[category if category in CATEGORIES else "Others"] += 1
    assert expected["VP"] > 0 and expected["AO"] > 0 and expected["CE"] > 0  # the fixture covers them
    dist = error_distribution(entries, judge=None)
    assert dist["models"]["m-a"]["total"] == expected
    assert dist["models"]["m-a"]["n_wrong"] == sum(expected.values())
    assert sum(dist["models"]["m-a"]["percent"].values()) == pytest.approx(100.0)
    assert dist["left_out"] == []


def test_figure1_command_writes_figure_counts_and_examples(tmp_path, synthetic_results):
    entries, data, _ = synthetic_results
    manifest = tmp_path / "f1.json"
    manifest.write_text(manifest_json(entries))
    png, pdf, counts = tmp_path / "figure1.png", tmp_path / "figure1.pdf", tmp_path / "figure1.json"
    assert main(["figure1", "--manifest", str(manifest), "--data", f"shapes_arith={data}", "--judge", "{}",
                 "--out-json", str(counts), "--out-png", str(png), "--out-pdf", str(pdf)]) == 0
    with Image.open(png) as im:
        assert im.format == "PNG" and im.height > 400
    assert pdf.read_bytes()[:5] == b"%PDF-"
    doc = json.loads(counts.read_text())
    assert len(doc["examples"]) == 2
    for example in doc["examples"]:
        assert example["misread"] and example["model"] == "m-a"
    assert "provenance" in doc


def test_real_benchmark_without_judge_is_left_out_and_said_so(tmp_path, synthetic_results):
    entries, _, _ = synthetic_results
    path = write_eval(tmp_path / "eval" / "m-a" / "base" / "mathvista.json", "mathvista", 50.0, "m-a")
    write_samples(path, [{"id": "1", "question": "q", "answer": "3", "response": "4", "score": 0}])
    real = EvalEntry("m-a", BASE_ROW, "", "mathvista", str(path))
    dist = error_distribution(entries + [real], judge=None)
    assert dist["left_out"] == [{"model": "m-a", "benchmark": "mathvista",
                                 "reason": "no ground-truth facts and no judge configured (eval.judge)"}]
    assert "mathvista" not in dist["models"]["m-a"]["benchmarks"]
    # with a judge, the same benchmark is classified by the judge's reply
    dist = error_distribution([real], judge={"kind": "hf", "model": "x"}, complete=lambda prompt: "CE")
    assert dist["models"]["m-a"]["total"]["CE"] == 1
    assert dist["models"]["m-a"]["benchmarks"]["mathvista"]["classified_by"] == "judge"


def test_parse_judge_category():
    assert parse_judge_category("RAE") == "RAE"
    assert parse_judge_category("The category is vp.") == "VP"
    assert parse_judge_category("no idea") == "Others"


def test_misread_lines_are_highlighted():
    lines = highlighted_lines({}, "Cells: red, blue.\n\nTop left: red circle.\n\n1 + 2 = 3.", ["top left"])
    assert [flag for _, flag in lines] == [False, False, True, False, False]


def test_misread_lines_found_by_the_grader(synthetic_results):
    entries, _, lines = synthetic_results
    line = next(x for x in lines if x["score"] < 1 and classify_error(x, x["response"]) == "VP")
    flags = highlighted_lines(line, line["response"], ["not in the text"])
    assert flags[0][1] and flags[0][0].startswith("Shape:")  # the misread "Shape:" line
    assert not any(flag for _, flag in flags[1:])


def test_figure1_builds_the_paper_profiles_vllm_judge(tmp_path, monkeypatch):
    """kind: vllm (in-process engine) is built by the eval stage's build_judge, engine arguments passed on."""
    import kawhi.judge as judge_module

    built = []

    def fake_vllm_completion(model, **engine_args):
        built.append((model, engine_args))
        return lambda prompt: "The main error is RAE." if "response:\nwrong rule" in prompt else "VP"

    monkeypatch.setattr(judge_module, "vllm_completion", fake_vllm_completion)
    path = write_eval(tmp_path / "eval" / "m-a" / "base" / "mathvista.json", "mathvista", 0.0, "m-a")
    write_samples(path, [{"id": "1", "question": "q", "answer": "3", "response": "wrong rule", "score": 0},
                         {"id": "2", "question": "q", "answer": "3", "response": "misread", "score": 0},
                         {"id": "3", "question": "q", "answer": "3", "response": "3", "score": 1}])
    real = EvalEntry("m-a", BASE_ROW, "", "mathvista", str(path))
    judge = {"kind": "vllm", "model": "Qwen/Qwen3-VL-30B-A3B-Instruct", "gpu_memory_utilization": 0.45,
             "benchmarks": ["mathvista"]}
    dist = error_distribution([real], judge=judge)
    assert built == [("Qwen/Qwen3-VL-30B-A3B-Instruct", {"gpu_memory_utilization": 0.45})]
    assert dist["models"]["m-a"]["benchmarks"]["mathvista"]["classified_by"] == "judge"
    assert (dist["models"]["m-a"]["total"]["RAE"], dist["models"]["m-a"]["total"]["VP"]) == (1, 1)


def test_figure1_refuses_an_unknown_judge_kind_naming_the_key(tmp_path):
    from kawhi.report.figure1 import judge_completion
    from kawhi.report.manifest import ReportInputError

    with pytest.raises(ReportInputError, match=r"eval\.judge\.kind must be one of .*'vllm'.*got 'gpt'"):
        judge_completion({"kind": "gpt", "model": "x"})
    with pytest.raises(ReportInputError, match=r"eval\.judge\.model is required"):
        judge_completion({"kind": "vllm"})
