"""Each benchmark's loader on a local fixture parquet that carries the real hub column names."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from PIL import Image

from kawhi.data.benchmarks import BENCHMARKS, BadRowError, BenchmarkError, prepare_benchmark


def img(color=(200, 30, 30)) -> Image.Image:
    return Image.new("RGB", (16, 12), color)


def png_bytes(color=(10, 200, 10), fmt="PNG") -> bytes:
    import io

    buf = io.BytesIO()
    img(color).save(buf, format=fmt)
    return buf.getvalue()


# Rows with the hub's column names and value types (lists, nested metadata, ints where the hub has ints).
FIXTURE_ROWS = {
    "mathvista": ([
        {"pid": "1", "question": "What is the value of x?", "image": "images/1.jpg", "decoded_image": img(),
         "choices": None, "unit": None, "precision": None, "answer": "3", "question_type": "free_form",
         "answer_type": "integer", "metadata": {"category": "math-targeted-vqa", "source": "Geometry3K"},
         "query": "Hint: Please answer the question requiring an integer answer.\nQuestion: What is the value of x?"},
        {"pid": "2", "question": "Which is larger?", "image": "images/2.jpg", "decoded_image": img(),
         "choices": ["red", "blue"], "unit": None, "precision": None, "answer": "blue",
         "question_type": "multi_choice", "answer_type": "text", "metadata": {"category": "general-vqa", "source": "X"},
         "query": "Hint: ...\nQuestion: Which is larger?\nChoices:\n(A) red\n(B) blue"}],
        {"decoded_image": datasets.Image()}),
    "mathverse": ([
        {"sample_index": "1", "problem_index": "1", "problem_version": "Text Lite", "question": "Find x.\nChoices:\nA:1\nB:2",
         "image": img(), "answer": "B", "question_type": "multi-choice",
         "metadata": {"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry", "subfield": "Angle"},
         "query_wo": "Please directly answer ...", "query_cot": "Please first conduct reasoning ... Find x.",
         "question_for_eval": "Find x."}],
        {"image": datasets.Image()}),
    "mathvision": ([
        {"id": "7", "question": "<image1>\nHow many?", "options": ["1", "2", "3", "4", "5"], "image": "images/7.jpg",
         "decoded_image": img(), "answer": "C", "solution": None, "level": 2, "subject": "counting"},
        {"id": "8", "question": "<image1>\nArea?", "options": [], "image": "images/8.jpg", "decoded_image": img(),
         "answer": "12", "solution": None, "level": 3, "subject": "metric geometry - area"}],
        {"decoded_image": datasets.Image()}),
    "wemath": ([
        {"ID": "3", "split": "testmini", "knowledge concept": "Area of rectangles", "question": "What is the area?",
         "option": "A. 6; B. 8; C. 12; D. 16", "answer": "C", "image_path": img(), "key": "2steps_1",
         "question number": 1001, "knowledge concept description": "..."},
        {"ID": "3", "split": "testmini", "knowledge concept": "Area of rectangles", "question": "Total area?",
         "option": "A. 6; B. 24; C. 12; D. 16", "answer": "B", "image_path": img(), "key": "2steps_multi",
         "question number": 1002, "knowledge concept description": "..."}],
        {"image_path": datasets.Image()}),
    "chartqa": ([
        {"image": img(), "query": "What is the peak value?", "label": ["45"], "human_or_machine": 0},
        {"image": img(), "query": "Share in 2019?", "label": ["12%"], "human_or_machine": 1}],
        {"image": datasets.Image()}),
    # ChartQA-Pro publishes no sample rows; the hub's columns and value types (image: raw JPEG bytes, not an
    # Image feature; Question / Answer / Year: lists; "Question Type" with a space, one of Factoid, Multi
    # Choice, Hypothetical, Fact Checking, Conversational; Paragraph) as third-party loaders of
    # ahmed-masry/ChartQAPro read them (CerebrasResearch/cb_ChartQAPro generate_responses_qapro_parallel.py,
    # an openbench ChartQAPro record_to_sample)
    "chartqapro": ([
        {"image": png_bytes(fmt="JPEG"), "Question": ["Which year is highest?"], "Answer": ["2016"], "Question Type": "Factoid",
         "Year": ["YES"], "Paragraph": ""},
        {"image": png_bytes(), "Question": ["What is shown?", "And in 2020?"], "Answer": ["Sales", "42"],
         "Question Type": "Conversational", "Year": ["NO", "NO"], "Paragraph": "Sales by year."}],
        {}),
    "charxiv": ([
        {"image": img(), "category": "cs", "grading_query": None, "reasoning_q": "Which line is higher at x=3?",
         "reasoning_q_source": 1, "reasoning_a": "Model A", "reasoning_a_type": 1,
         "descriptive_q1": 1, "descriptive_q2": 2, "descriptive_q3": 18, "descriptive_q4": 13,
         "descriptive_a1": "Results", "descriptive_a2": "Epoch", "descriptive_a3": "1 by 2",
         "descriptive_a4": "Model A, Model B", "subplot_loc": None, "subplot_row": 1, "subplot_col": 2,
         "figure_path": "images/0.jpg", "num_subplots": 2}],
        {"image": datasets.Image()}),
    "mme": ([
        {"question_id": "code_reasoning/0020.png", "image": img(), "question": "Is the output 3? Please answer yes or no.",
         "answer": "Yes", "category": "code_reasoning"},
        {"question_id": "code_reasoning/0020.png", "image": img(), "question": "Is the output 4? Please answer yes or no.",
         "answer": "No", "category": "code_reasoning"}],
        {"image": datasets.Image()}),
}


def write_fixture(rows: list[dict], image_features: dict, path: Path) -> Path:
    """A parquet written with `datasets`, as the hub's own parquet exports are."""
    ds = datasets.Dataset.from_list(rows)
    for column, feature in image_features.items():
        ds = ds.cast_column(column, feature)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))
    return path


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hub")
    return {name: write_fixture(rows, feats, root / name / "test.parquet") for name, (rows, feats) in FIXTURE_ROWS.items()}


def fixture_for(name: str) -> str:
    return "charxiv" if name.startswith("charxiv") else name


EXPECTED = {  # benchmark -> (rows out, original columns that must survive, first row's id and answer)
    "mathvista": (2, ["pid", "query", "choices", "precision", "question_type", "answer_type", "metadata",
                      "question_hub", "image_hub"], ("1", "3")),
    "mathverse": (1, ["problem_version", "query_cot", "question_type", "question_hub"], ("1", "B")),
    "mathvision": (2, ["level", "subject", "solution"], ("7", "C")),
    "wemath": (2, ["ID", "key", "option", "knowledge concept", "question number"], ("3_2steps_1", "C")),
    "chartqa": (2, ["query", "label", "human_or_machine"], ("0", "45")),
    "chartqapro": (2, ["Question", "Answer", "Question Type", "Year", "Paragraph"], ("0", "2016")),
    "charxiv_descriptive": (4, ["descriptive_q", "descriptive_a", "qid", "reasoning_q_source", "subplot_row"],
                            ("images/0.jpg#d1", "Results")),
    "charxiv_reasoning": (1, ["reasoning_q", "reasoning_q_source", "reasoning_a"], ("images/0.jpg#r", "Model A")),
    "mme": (2, ["question_id", "category"], ("code_reasoning/0020.png#0", "Yes")),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_maps_real_columns_to_common_ones(name, fixtures, tmp_path):
    out = tmp_path / "test.parquet"
    report = prepare_benchmark(name, out, source=str(fixtures[fixture_for(name)]), split="test")
    n, originals, (first_id, first_answer) = EXPECTED[name]
    assert report.n_rows == n and report.n_skipped == 0
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert isinstance(ds.features["image"], datasets.Image)
    for column in ("id", "image", "question", "answer", "options", *originals):
        assert column in ds.column_names, (column, ds.column_names)
    row = ds[0]
    assert (row["id"], row["answer"]) == (first_id, first_answer)
    assert row["image"].size == (16, 12)
    assert isinstance(row["options"], list) and row["question"].strip()


def test_mathvista_question_is_the_query_and_options_are_the_choices(fixtures, tmp_path):
    prepare_benchmark("mathvista", tmp_path / "o.parquet", source=str(fixtures["mathvista"]))
    rows = datasets.load_dataset("parquet", data_files=str(tmp_path / "o.parquet"), split="train")
    assert rows[1]["question"].startswith("Hint:") and rows[1]["question_hub"] == "Which is larger?"
    assert rows[1]["options"] == ["red", "blue"] and rows[0]["options"] == []
    assert "decoded_image" not in rows.column_names  # the image is stored once


def test_charxiv_descriptive_questions_carry_the_subplot_and_template(fixtures, tmp_path):
    prepare_benchmark("charxiv_descriptive", tmp_path / "o.parquet", source=str(fixtures["charxiv"]))
    rows = datasets.load_dataset("parquet", data_files=str(tmp_path / "o.parquet"), split="train")
    assert rows[0]["question"].startswith("For the subplot at row 1 and column 2, what is its title?")
    assert rows[2]["question"].startswith("What is the layout of the subplots?")  # q18 has no subplot prefix
    assert rows[3]["qid"] == 13 and rows[3]["answer"] == "Model A, Model B"


def test_chartqapro_conversation_keeps_context_and_targets_last_answer(fixtures, tmp_path):
    prepare_benchmark("chartqapro", tmp_path / "o.parquet", source=str(fixtures["chartqapro"]))
    row = datasets.load_dataset("parquet", data_files=str(tmp_path / "o.parquet"), split="train")[1]
    assert row["answer"] == "42"
    assert row["question"].startswith("Sales by year.") and row["question"].endswith("And in 2020?")


def test_limit_keeps_the_first_rows(fixtures, tmp_path):
    report = prepare_benchmark("charxiv_descriptive", tmp_path / "o.parquet", source=str(fixtures["charxiv"]), limit=2)
    assert report.n_rows == 2


@pytest.fixture
def bad_chartqa(tmp_path) -> Path:
    rows = [{"image": img(), "query": "q0", "label": ["1"], "human_or_machine": 0},
            {"image": None, "query": "q1", "label": ["2"], "human_or_machine": 0},
            {"image": img(), "query": "q2", "label": [], "human_or_machine": 1}]
    return write_fixture(rows, {"image": datasets.Image()}, tmp_path / "bad" / "test.parquet")


def test_bad_row_stops_with_its_id(bad_chartqa, tmp_path):
    with pytest.raises(BadRowError, match=r"row id '1' has no image"):
        prepare_benchmark("chartqa", tmp_path / "o.parquet", source=str(bad_chartqa))
    assert not (tmp_path / "o.parquet").exists()


def test_bad_rows_are_skipped_and_counted_when_allowed(bad_chartqa, tmp_path):
    report = prepare_benchmark("chartqa", tmp_path / "o.parquet", source=str(bad_chartqa), skip_bad_rows=True)
    assert (report.n_rows, report.n_skipped, report.skipped_ids) == (1, 2, ["1", "2"])


def test_missing_column_is_named(tmp_path):
    path = write_fixture([{"image": img(), "question": "q", "label": ["1"]}], {"image": datasets.Image()},
                         tmp_path / "x" / "test.parquet")
    with pytest.raises(BenchmarkError, match=r"lacks column\(s\) \['query', 'human_or_machine'\]"):
        prepare_benchmark("chartqa", tmp_path / "o.parquet", source=str(path))


def test_offline_without_a_copy_fails_at_once_with_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(BenchmarkError) as err:
        prepare_benchmark("mathvista", tmp_path / "o.parquet", source="AI4Math/MathVista-not-cached")
    text = str(err.value)
    assert "AI4Math/MathVista-not-cached" in text and "huggingface-cli download --repo-type dataset" in text
    assert "benchmark_sources.mathvista.source" in text


def test_every_benchmark_has_the_papers_default_source():
    defaults = {name: (spec.source, spec.split) for name, spec in BENCHMARKS.items()}
    assert defaults["mathvista"] == ("AI4Math/MathVista", "testmini")
    assert defaults["charxiv_reasoning"] == ("princeton-nlp/CharXiv", "validation")
    assert defaults["chartmimic"] == ("ChartMimic/ChartMimic", "direct_600")
    assert defaults["rl_train"] == ("hiyouga/geometry3k", "train")
    assert len(defaults) == 11  # the ten paper benchmarks and the RL training set


def test_rl_train_set_reads_the_geometry3k_layout(tmp_path):
    import datasets
    from PIL import Image

    from kawhi.data.benchmarks import prepare_benchmark

    src = tmp_path / "geo.parquet"
    ds = datasets.Dataset.from_dict({
        "images": [[Image.new("RGB", (8, 8), "white")], [Image.new("RGB", (8, 8), "black")]],
        "problem": ["<image>Find x.", "<image>Find y."], "answer": ["3", "4"]},
        features=datasets.Features({"images": datasets.Sequence(datasets.Image()),
                                    "problem": datasets.Value("string"), "answer": datasets.Value("string")}))
    ds.to_parquet(str(src))
    out = tmp_path / "train.parquet"
    report = prepare_benchmark("rl_train", out, source=str(src), split="train")
    rows = datasets.Dataset.from_parquet(str(out))
    assert report.n_rows == 2
    assert rows[0]["question"] == "Find x." and rows[1]["answer"] == "4"
    assert rows[0]["image"].size == (8, 8) and rows[0]["official_prompt"] is False


def test_cli_prepares_and_prints_a_report(fixtures, tmp_path, capsys):
    from kawhi.cli import main

    out = tmp_path / "mme.parquet"
    assert main(["prepare-benchmark", "--name", "mme", "--out", str(out), "--source", str(fixtures["mme"])]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["n_rows"] == 2 and out.exists()
