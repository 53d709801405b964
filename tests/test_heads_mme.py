"""MME scoring (lmms-eval's rule) and the MME loader on a local parquet with the hub's columns."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kawhi.data.mme import (
    COGNITION_CATEGORIES,
    PERCEPTION_CATEGORIES,
    load_mme,
    mme_scores,
    parse_yes_no,
)


def row(qid, category, answer, prediction):
    return {"question_id": qid, "category": category, "answer": answer, "prediction": prediction}


def test_hand_made_predictions_give_known_totals():
    rows = [
        # existence: image a both right; image b one right, one wrong -> acc 75, acc+ 50 -> 125
        row("existence/a.png", "existence", "Yes", "Yes"),
        row("existence/a.png", "existence", "No", "no."),
        row("existence/b.png", "existence", "Yes", "Yes, there is."),
        row("existence/b.png", "existence", "No", "Yes"),
        # color: both right -> 200
        row("color/c.png", "color", "Yes", "y"),
        row("color/c.png", "color", "No", "Not at all"),
        # code_reasoning: one wrong, one unparseable -> 0
        row("code_reasoning/d.png", "code_reasoning", "Yes", "No"),
        row("code_reasoning/d.png", "code_reasoning", "No", "The answer is no"),
        # numerical_calculation: one right, one wrong -> acc 50, acc+ 0 -> 50
        row("numerical_calculation/e.png", "numerical_calculation", "No", "no"),
        row("numerical_calculation/e.png", "numerical_calculation", "Yes", "n"),
    ]
    scores = mme_scores(rows)
    per = scores["per_category"]
    assert per["existence"]["acc"] == pytest.approx(75.0)
    assert per["existence"]["acc_plus"] == pytest.approx(50.0)
    assert per["existence"]["score"] == pytest.approx(125.0)
    assert per["color"]["score"] == pytest.approx(200.0)
    assert per["code_reasoning"]["score"] == pytest.approx(0.0)
    assert per["numerical_calculation"]["score"] == pytest.approx(50.0)
    assert scores["perception"] == pytest.approx(325.0)
    assert scores["cognition"] == pytest.approx(50.0)
    assert scores["total"] == pytest.approx(375.0)


@pytest.mark.parametrize("text,label", [
    ("Yes", "Yes"), ("yes.", "Yes"), (" YES ", "Yes"), ("y", "Yes"), ("Yes, it is red.", "Yes"),
    ("No", "No"), ("no.", "No"), ("n", "No"), ("Not really", "No"), ("None", "No"),
    ("x", "Other"), ("", "Other"), ("The answer is yes", "Other"), ("Maybe", "Other"),
])
def test_parse_yes_no_follows_lmms_eval(text, label):
    assert parse_yes_no(text) == label


@given(st.text(max_size=20))
def test_parse_yes_no_reads_a_leading_yes_and_returns_a_label(suffix):
    assert parse_yes_no("Yes" + suffix) == "Yes"
    assert parse_yes_no(suffix) in ("Yes", "No", "Other")


ALL_CATEGORIES = PERCEPTION_CATEGORIES + COGNITION_CATEGORIES


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ALL_CATEGORIES), st.booleans(), st.booleans()), min_size=1, max_size=30),
       st.randoms())
def test_scores_are_bounded_and_order_free(images, rnd):
    rows = []
    for i, (category, right1, right2) in enumerate(images):
        qid = f"{category}/{i}.png"
        rows.append(row(qid, category, "Yes", "Yes" if right1 else "No"))
        rows.append(row(qid, category, "No", "No" if right2 else "Yes"))
    scores = mme_scores(rows)
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    assert mme_scores(shuffled) == scores
    for value in scores["per_category"].values():
        assert 0.0 <= value["acc_plus"] <= value["acc"] <= 100.0
    assert scores["total"] == pytest.approx(scores["perception"] + scores["cognition"])
    assert scores["perception"] <= 200.0 * len(PERCEPTION_CATEGORIES)
    assert scores["cognition"] <= 200.0 * len(COGNITION_CATEGORIES)


def test_bad_rows_are_named():
    with pytest.raises(ValueError, match="row 1"):
        mme_scores([row("a", "color", "Yes", "Yes"), row("a", "color", "Maybe", "Yes")])
    with pytest.raises(ValueError, match="unknown MME category 'colour'"):
        mme_scores([row("a", "colour", "Yes", "Yes")])
    with pytest.raises(KeyError, match="prediction"):
        mme_scores([{"question_id": "a", "category": "color", "answer": "Yes"}])


# ---- loader ----------------------------------------------------------------------------------------

def write_mme_fixture(path, n_images=6, answers=None):
    """A parquet with lmms-lab/MME's columns and small PIL images, written with `datasets`."""
    import datasets
    from PIL import Image

    rng = random.Random(0)
    data = {"question_id": [], "image": [], "question": [], "answer": [], "category": []}
    categories = ["existence", "OCR", "code_reasoning"]
    for i in range(n_images):
        category = categories[i % len(categories)]
        image = Image.new("RGB", (24 + 4 * i, 16), tuple(rng.randrange(256) for _ in range(3)))
        for question, answer in (("Is there a dog? Please answer yes or no.", "Yes"),
                                 ("Is there a cat? Please answer yes or no.", "No")):
            data["question_id"].append(f"{category}/{i:04d}.png")
            data["image"].append(image)
            data["question"].append(question)
            data["answer"].append(answer)
            data["category"].append(category)
    if answers is not None:
        data["answer"] = answers(data["answer"])
    features = datasets.Features({"question_id": datasets.Value("string"), "image": datasets.Image(),
                                  "question": datasets.Value("string"), "answer": datasets.Value("string"),
                                  "category": datasets.Value("string")})
    datasets.Dataset.from_dict(data, features=features).to_parquet(str(path))
    return path


def test_loader_reads_a_local_parquet_with_the_real_columns(tmp_path):
    from PIL import Image

    path = write_mme_fixture(tmp_path / "test.parquet")
    ds = load_mme(path)
    assert len(ds) == 12
    assert set(ds.column_names) >= {"question_id", "image", "question", "answer", "category"}
    first = ds[0]
    assert isinstance(first["image"], Image.Image)
    assert first["question_id"] == "existence/0000.png"
    assert first["image"].size == (24, 16)
    # a directory of parquet files reads the same rows
    assert len(load_mme(tmp_path)) == 12


def test_loader_limit_keeps_whole_images(tmp_path):
    ds = load_mme(write_mme_fixture(tmp_path / "test.parquet"), limit=3)
    assert len(ds) == 4  # 3 questions rounded up to two whole images
    assert len(set(ds["question_id"])) == 2


def test_loader_refuses_bad_answers_and_missing_columns(tmp_path):
    bad = write_mme_fixture(tmp_path / "bad.parquet", answers=lambda a: a[:5] + ["Perhaps"] + a[6:])
    with pytest.raises(ValueError, match="row 5"):
        load_mme(bad)
    import datasets

    datasets.Dataset.from_dict({"question_id": ["a"], "question": ["q"], "answer": ["Yes"],
                                "category": ["color"]}).to_parquet(str(tmp_path / "noimg.parquet"))
    with pytest.raises(ValueError, match="'image'"):
        load_mme(tmp_path / "noimg.parquet")


def test_loader_reads_the_synthetic_mme_suite(suite_factory):
    pytest.importorskip("kawhi.data.synthetic")
    ds = load_mme(suite_factory("mme_synth", "test", n=8))
    counts = {}
    for qid in ds["question_id"]:
        counts[qid] = counts.get(qid, 0) + 1
    assert set(counts.values()) == {2}
    assert set(ds["category"]) <= set(PERCEPTION_CATEGORIES)


def test_mme_prompt_shows_the_yes_no_instruction_once():
    from kawhi.data.prompts import YES_NO_INSTRUCTION, build_messages

    (message,) = build_messages("Is there a cat in the image? Please answer yes or no.", [], yes_no=True)
    text = message["content"][-1]["text"]
    assert text.lower().count(YES_NO_INSTRUCTION.lower()) == 1
    assert text.startswith("Is there a cat in the image?")
