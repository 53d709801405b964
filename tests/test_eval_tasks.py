"""The lm-eval task definition and the scoring path, without a model."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from kawhi.data.prompts import build_messages
from kawhi.eval.rescore import (PredictionsError, read_predictions, sample_line, score_samples,
                                split_sample)
from kawhi.eval.tasks import (IMAGE_PLACEHOLDER, BenchmarkTask, find_bad_rows, load_benchmark,
                              prompt_text, row_images, row_without_images, sample_key)


class CountingScorer:
    """A stand-in scorer: exact match on the last character; counts score_sample calls."""

    name = "counting"
    primary = "accuracy"
    yes_no = False

    def __init__(self):
        self.calls = 0

    def score_sample(self, row, response):
        self.calls += 1
        extracted = response.strip()[-1:]
        return {"extracted": extracted, "score": float(extracted == str(row["answer"]))}

    def aggregate(self, rows, scored):
        return {"accuracy": 100.0 * sum(s["score"] for s in scored) / len(scored)}


def _image(color=(255, 0, 0)):
    return Image.new("RGB", (32, 32), color)


def write_parquet(path: Path, rows: list[dict]) -> Path:
    features = datasets.Features({
        "id": datasets.Value("string"), "image": datasets.Image(), "question": datasets.Value("string"),
        "answer": datasets.Value("string"), "options": datasets.Sequence(datasets.Value("string")),
        "hub_column": datasets.Value("int64"),
    })
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))
    return path


def make_rows(n: int) -> list[dict]:
    return [{"id": f"q{i}", "image": _image((i * 20 % 255, 0, 0)), "question": f"How many {i}?",
             "answer": str(i % 3), "options": ["0", "1", "2"] if i % 2 else [], "hub_column": i}
            for i in range(n)]


def test_prompt_text_is_build_messages_in_lm_eval_form():
    row = {"question": "Which bar is tallest?", "options": ["red", "blue"]}
    text = prompt_text(row, n_images=2, yes_no=False)
    (message,) = build_messages(row["question"], row["options"], n_images=2, yes_no=False)
    assert text.startswith(IMAGE_PLACEHOLDER * 2)
    assert text[len(IMAGE_PLACEHOLDER) * 2:] == message["content"][-1]["text"]
    assert "(B) blue" in text


def test_prompt_text_yes_no_uses_the_yes_no_instruction():
    assert prompt_text({"question": "Is it red?", "options": []}, 1, yes_no=True).endswith("Please answer yes or no.")


def test_row_without_images_drops_images_and_round_trips_json():
    row = {"id": "a", "image": _image(), "decoded_image": {"bytes": b"\x89PNG", "path": None},
           "pictures": [_image(), _image()], "answer": 3, "meta": {"k": (1, 2)}}
    clean = row_without_images(row)
    assert set(clean) == {"id", "answer", "meta"}
    assert clean["meta"] == {"k": [1, 2]}  # tuples come back as lists, as from a JSONL
    assert row_without_images(clean) == clean


def test_row_images_accepts_pil_lists_and_raw_structs(tmp_path):
    import io

    buf = io.BytesIO()
    _image().save(buf, format="PNG")
    assert len(row_images({"image": _image()})) == 1
    assert len(row_images({"image": [_image(), _image()]})) == 2
    (img,) = row_images({"image": {"bytes": buf.getvalue(), "path": None}})  # pandas-written parquet
    assert img.mode == "RGB" and img.size == (32, 32)


def test_find_bad_rows_names_ids_of_rows_without_image_or_answer(tmp_path):
    rows = make_rows(5)
    rows[1]["image"] = None
    rows[3]["answer"] = "  "
    bad = find_bad_rows(load_benchmark(write_parquet(tmp_path / "b.parquet", rows), decode_images=False))
    assert [(b.row_id, b.reason) for b in bad] == [("q1", "no image"), ("q3", "no answer")]


def test_process_docs_skips_exactly_the_bad_ids(tmp_path):
    path = write_parquet(tmp_path / "b.parquet", make_rows(6))
    task = BenchmarkTask("synthetic", path, CountingScorer(), max_new_tokens=4, skip_ids=frozenset({"q2", "q5"}))
    kept = task.process_docs(load_benchmark(path))
    assert kept["id"] == ["q0", "q1", "q3", "q4"]


def test_task_config_is_greedy_and_never_stops_at_paragraph_breaks(tmp_path):
    path = write_parquet(tmp_path / "b.parquet", make_rows(2))
    config = BenchmarkTask("shapes_count", path, CountingScorer(), max_new_tokens=7).task_config()
    gen = config["generation_kwargs"]
    assert gen["do_sample"] is False and gen["max_gen_toks"] == 7
    assert "\n\n" not in gen["until"]
    assert config["dataset_kwargs"]["data_files"]["test"] == str(path)


def test_process_results_scores_once_and_rescoring_reuses_it(tmp_path):
    path = write_parquet(tmp_path / "b.parquet", make_rows(4))
    scorer = CountingScorer()
    task = BenchmarkTask("synthetic", path, scorer, max_new_tokens=4)
    docs = load_benchmark(path)
    responses = ["the answer is 0", "1", "x", "2"]
    per_doc = [task.process_results(doc, [r])["score"] for doc, r in zip(docs, responses)]
    rows = [row_without_images(d) for d in docs]
    scored, metrics = score_samples(scorer, rows, responses, precomputed=task.scored)
    assert scorer.calls == 4  # nothing scored twice
    assert [s["score"] for s in scored] == per_doc == [1.0, 1.0, 0.0, 0.0]
    assert metrics == {"accuracy": 50.0}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False, width=32),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6)


@settings(max_examples=60, deadline=None)
@given(extra=st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda k: k not in (
    "prompt", "response", "extracted", "score", "scoring", "id", "answer")), json_values, max_size=4),
    answer=st.text(min_size=1, max_size=3), response=st.text(max_size=12))
def test_a_samples_line_reads_back_as_the_same_row_and_response(extra, answer, response):
    row = row_without_images({"id": "r", "answer": answer, **extra})
    scorer = CountingScorer()
    line = sample_line(row, "PROMPT", response, scorer.score_sample(row, response))
    back_row, back_response = split_sample(json.loads(json.dumps(line)))
    assert back_row == row and back_response == response
    assert sample_key(back_row, back_response) == sample_key(row, response)


def test_read_predictions_names_the_line_without_response(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "a", "answer": "1", "response": "1"}) + "\n"
                    + json.dumps({"id": "b", "answer": "2"}) + "\n")
    with pytest.raises(PredictionsError, match=r"p.jsonl:2 \(id 'b'\)"):
        read_predictions(path)


def test_sample_line_refuses_a_row_column_that_clashes_with_log_fields():
    with pytest.raises(PredictionsError, match="'score'"):
        sample_line({"id": "a", "score": 3}, "p", "r", {"extracted": None, "score": 0.0})
