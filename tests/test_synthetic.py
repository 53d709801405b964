"""The synthetic suites: determinism, columns, MME-style pairs, disjoint splits, grading, error classes."""

from __future__ import annotations

import collections
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kawhi.data.prompts import OPTION_LETTERS, format_target
from kawhi.data.synthetic.grading import stated_facts
from kawhi.data.synthetic import (
    ERROR_CATEGORIES,
    SUITES,
    build_rows,
    classify_error,
    equations,
    is_correct,
    misread_facts,
    split_of,
    write_suite,
)

SUITE_NAMES = sorted(SUITES)
BASE_COLUMNS = {"id", "image", "question", "answer", "options", "solution", "facts", "suite"}
MME_COLUMNS = {"question_id", "image", "question", "answer", "category"}


def _wrong_answer(row: dict) -> str:
    if row["options"]:
        return next(o for o in row["options"] if o != row["answer"])
    return "No" if row["answer"] == "Yes" else "Yes"


# ---- files ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_same_seed_gives_same_bytes_and_other_seed_differs(suite, tmp_path):
    a = write_suite(suite=suite, split="test", n=6, seed=3, out=tmp_path / "a.parquet")
    b = write_suite(suite=suite, split="test", n=6, seed=3, out=tmp_path / "b.parquet")
    c = write_suite(suite=suite, split="test", n=6, seed=4, out=tmp_path / "c.parquet")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_every_suite_has_the_columns_and_pil_images(suite, suite_factory):
    from datasets import load_dataset
    from PIL import Image

    data = load_dataset("parquet", data_files=str(suite_factory(suite, "test", 8)), split="train")
    assert BASE_COLUMNS <= set(data.column_names)
    if SUITES[suite].yes_no:
        assert MME_COLUMNS <= set(data.column_names)
    row = data[0]
    assert isinstance(row["image"], Image.Image) and row["image"].size == (64, 64)
    for row in data:
        assert row["suite"] == suite
        assert isinstance(row["answer"], str) and row["answer"]
        assert isinstance(row["options"], list)
        assert row["options"] == [] if SUITES[suite].yes_no else row["answer"] in row["options"]
        facts = json.loads(row["facts"])
        assert facts["values"] and facts["boxes"]
        # a grounded target has a reading paragraph before the boxed answer (KAWHI weighs paragraphs),
        # and that reading parses back into the row's facts
        assert len(format_target(row["solution"], row["answer"]).split("\n\n")) >= 2
        if not SUITES[suite].yes_no:
            stated = stated_facts(suite, row["solution"].split("\n\n")[0])
            assert stated and all(key in facts["values"] for key, _ in stated)
    assert len(set(data["id"])) == len(data)


def test_image_size_is_honoured(tmp_path):
    from datasets import load_dataset

    out = write_suite(suite="bars_lookup", split="train", n=2, seed=0, out=tmp_path / "b.parquet", image_size=32)
    assert load_dataset("parquet", data_files=str(out), split="train")[0]["image"].size == (32, 32)


def test_mme_synth_has_two_questions_per_image_one_yes_one_no():
    rows = build_rows("mme_synth", "test", 40, seed=0)
    assert len(rows) == 80
    by_image = collections.defaultdict(list)
    for row in rows:
        by_image[row["question_id"]].append(row)
    assert len(by_image) == 40
    for pair in by_image.values():
        assert sorted(r["answer"] for r in pair) == ["No", "Yes"]
        assert pair[0]["category"] == pair[1]["category"]
        assert pair[0]["image"].tobytes() == pair[1]["image"].tobytes()
        assert pair[0]["question"] != pair[1]["question"]
    assert {r["category"] for r in rows} == {"existence", "count", "position", "color"}


@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_train_and_test_scenes_do_not_overlap(suite):
    """Grid suites hold out whole scenes (fact sets); suites with few facts per picture (one colour,
    one bar) cannot, and hold out pictures: no test picture is pixel-identical to a train picture."""
    from kawhi.data.synthetic.grading import GRID_SUITES
    from kawhi.data.synthetic.spec import picture_key

    def scenes(split: str, seed: int) -> set[str]:
        rows = build_rows(suite, split, 150, seed)
        if suite in GRID_SUITES:
            return {json.dumps(json.loads(r["facts"])["values"], sort_keys=True) for r in rows}
        return {picture_key(r["image"]) for r in rows}

    train = scenes("train", 0) | scenes("train", 1)
    test = scenes("test", 0)
    assert train and test
    assert not train & test


@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_question_types_are_balanced_and_answers_spread(suite):
    spec = SUITES[suite]
    rows = build_rows(suite, "train", 12 * len(spec.question_types), seed=0)
    per_picture = 2 if spec.yes_no else 1
    counts = collections.Counter(r["category"] for r in rows)
    assert set(counts) == {t.name for t in spec.question_types}
    assert len(set(counts.values())) == 1
    # No single answer dominates: always giving the commonest answer stays near chance.
    top = collections.Counter(r["answer"] for r in rows).most_common(1)[0][1]
    assert top / len(rows) <= 0.5 if per_picture == 2 else top / len(rows) < 0.45


def test_chance_levels():
    assert SUITES["shapes_count"].chance == 25.0
    assert SUITES["lines_compare"].chance == 25.0   # four options since the curriculum redesign
    assert SUITES["mme_synth"].chance == 50.0
    assert {s.kind for s in SUITES.values()} == {"math", "chart", "mme"}


def test_make_data_command_writes_parquet(tmp_path):
    from kawhi.cli import main

    out = tmp_path / "d" / "x.parquet"
    assert main(["make-data", "--suite", "shapes_count", "--split", "train", "--n", "3", "--seed", "1",
                 "--out", str(out)]) == 0
    assert out.read_bytes() == write_suite(suite="shapes_count", split="train", n=3, seed=1,
                                           out=tmp_path / "y.parquet").read_bytes()


def test_unknown_suite_and_split_are_named():
    with pytest.raises(KeyError, match="nope"):
        build_rows("nope", "test", 1, 0)
    with pytest.raises(ValueError, match="valid"):
        build_rows("shapes_count", "valid", 1, 0)


# ---- grading ----------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(suite=st.sampled_from(SUITE_NAMES), seed=st.integers(0, 10_000), split=st.sampled_from(["train", "test"]))
def test_reference_target_is_correct_and_a_wrong_final_answer_is_a_rule_error(suite, seed, split):
    row = build_rows(suite, split, 1, seed)[0]
    target = format_target(row["solution"], row["answer"])
    assert is_correct(row, target)
    assert classify_error(row, target) == "correct"
    assert misread_facts(row, target) == []
    assert all(ok for _, _, ok in equations(target))
    assert split_of(suite, json.dumps(json.loads(row["facts"])["values"])) in ("train", "test")

    wrong = format_target(row["solution"], _wrong_answer(row))
    assert not is_correct(row, wrong)
    # Right facts, right arithmetic, wrong conclusion: the rule was misapplied.
    assert classify_error(row, wrong) == "RAE"
    assert classify_error(row, f"The answer is \\boxed{{{_wrong_answer(row)}}}.") == "AO"


@pytest.mark.parametrize("suite", ["shapes_count", "bars_lookup", "lines_compare"])
def test_option_letter_counts_as_the_option(suite):
    row = build_rows(suite, "test", 1, 0)[0]
    letter = OPTION_LETTERS[row["options"].index(row["answer"])]
    assert is_correct(row, f"The answer is \\boxed{{{letter}}}.")
    assert is_correct(row, f"({letter})")


def test_yes_no_uses_the_first_word():
    row = next(r for r in build_rows("mme_synth", "test", 2, 0) if r["answer"] == "Yes")
    assert is_correct(row, "Yes")
    assert is_correct(row, "yes, it is.")
    assert not is_correct(row, "No")
    assert not is_correct(row, "Maybe")


def _hand_row() -> dict:
    """A hand-made shapes_count row: two red shapes, one blue, one empty cell; 2 coins a shape."""
    values = {
        "top left": {"color": "red", "shape": "square"}, "top right": {"color": None, "shape": None},
        "bottom left": {"color": "blue", "shape": "circle"}, "bottom right": {"color": "red", "shape": "circle"},
        "shapes": {"count": 3},
    }
    return {"id": "hand/0", "suite": "shapes_count", "answer": "6", "options": ["5", "6", "7", "8"],
            "question": "Each shape in the picture costs 2 coins. How many coins do all of them cost?",
            "facts": json.dumps({"values": values, "boxes": {}})}


@pytest.mark.parametrize("response,category,misread", [
    ("Cells: red, empty, blue, red.\n\nShapes: 3.\n\n3 x 2 = 6.\n\nThe answer is \\boxed{6}.",
     "correct", []),
    ("Cells: red, red, blue, red.\n\nShapes: 4.\n\n4 x 2 = 8.\n\nThe answer is \\boxed{8}.",
     "VP", ["top right", "shapes"]),
    ("Cells: red, empty, blue, red.\n\nShapes: 3.\n\n3 x 2 = 5.\n\nThe answer is \\boxed{5}.",
     "CE", []),
    ("Cells: red, empty, blue, red.\n\nShapes: 3.\n\n3 + 2 = 5.\n\nThe answer is \\boxed{5}.",
     "RAE", []),
    ("The answer is \\boxed{5}.", "AO", []),
    ("5", "AO", []),
    ("Let me think about the coins.\n\nThe answer is \\boxed{5}.", "Others", []),
    ("Cells: red, empty, blue, red.\n\nShapes: 3.", "Others", []),
])
def test_classify_error_on_hand_made_responses(response, category, misread):
    row = _hand_row()
    assert classify_error(row, response) == category
    assert misread_facts(row, response) == misread


@pytest.mark.parametrize("suite,response,category,misread", [
    ("bars_lookup", "Bar: {a} 9.\n\nThe answer is \\boxed{{{w}}}.", "VP", ["{a} bar"]),
    ("lines_compare", "Highest: 9. Lowest: 9.\n\nThe answer is \\boxed{{{w}}}.", "VP", ["highest", "lowest"]),
    ("shapes_arith", "Shape: purple.\n\nThe answer is \\boxed{{{w}}}.", "VP", ["shape"]),
    ("mme_synth", "Cells: purple star.\n\nThe answer is \\boxed{{{w}}}.", "VP", ["top left"]),
])
def test_misread_facts_name_the_wrong_fact(suite, response, category, misread):
    row = build_rows(suite, "test", 1, 0)[0]
    first = next(iter(json.loads(row["facts"])["values"]))
    color = first.split()[0]
    text = response.format(a=color, w=_wrong_answer(row))
    assert classify_error(row, text) == category
    assert misread_facts(row, text) == [m.format(a=color) for m in misread]


def test_mme_absence_statements_are_checked():
    row = next(r for r in build_rows("mme_synth", "test", 4, 0) if r["category"] == "existence")
    present = [v for k, v in json.loads(row["facts"])["values"].items() if v.get("color")][0]
    thing = f"{present['color']} {present['shape']}"
    assert misread_facts(row, f"{thing.capitalize()}: none.") == [thing]
    assert misread_facts(row, "Purple star: none.") == []


def test_every_category_is_reachable():
    assert set(ERROR_CATEGORIES) == {"correct", "VP", "AO", "CE", "RAE", "Others"}


def test_an_evaluation_samples_line_names_its_suite_by_benchmark():
    row = build_rows("bars_lookup", "test", 1, 0)[0]
    line = {k: v for k, v in row.items() if k not in ("suite", "image")} | {"benchmark": "bars_lookup"}
    assert classify_error(line, format_target(row["solution"], row["answer"])) == "correct"
    with pytest.raises(KeyError, match="names no suite"):
        is_correct({k: v for k, v in line.items() if k != "benchmark"}, "3")


@pytest.mark.parametrize("render", ["bars", "lines"])
def test_chart_background_tells_every_token_square_apart(render):
    """The position cue of the charts: each of the 4x4 token squares has its own background grey."""
    import random

    from kawhi.data import render as draw

    size = 64
    if render == "bars":
        image, _ = draw.render_bars([], size, random.Random(0))
    else:
        image, _ = draw.render_lines({}, size, random.Random(0))
    # the centre-left pixel of each token square, clear of the grid lines and the axis
    greys = {(col, row): image.getpixel((16 * col + 3, 16 * row + 8)) for col in range(4) for row in range(4)}
    assert len(set(greys.values())) == 16
    assert all(greys[(col, row)] == draw.chart_background(col, row) for col, row in greys)
