"""Math scorers on hand-made predictions with known scores, incl. the official edge cases."""

from __future__ import annotations

import pytest

from kawhi.eval.scorers import get_scorer, scorer_names


def mv_row(**kw):
    row = {"id": "1", "answer": "blue", "question_type": "multi_choice", "answer_type": "text",
           "choices": ["red", "blue", "green"], "precision": None, "question": "Which?"}
    row.update(kw)
    return row


@pytest.mark.parametrize("response,score", [
    ("The answer is \\boxed{B}.", 1.0),      # letter -> option text
    ("The answer is \\boxed{blue}.", 1.0),   # option text itself
    ("So the answer is (B).", 1.0),
    ("\\boxed{A}", 0.0),
    ("\\boxed{blu}", 1.0),                   # nearest option by edit distance, as the official normaliser
])
def test_mathvista_multiple_choice_letter_or_text(response, score):
    assert get_scorer("mathvista").score_sample(mv_row(), response)["score"] == score


def test_mathvista_numbers_are_normalised_to_precision():
    scorer = get_scorer("mathvista")
    floats = mv_row(answer="1.5", question_type="free_form", answer_type="float", choices=None, precision=1)
    assert scorer.score_sample(floats, "\\boxed{1.50}")["score"] == 1.0
    assert scorer.score_sample(floats, "\\boxed{1.46}")["score"] == 1.0  # rounds to 1.5 at precision 1
    assert scorer.score_sample(floats, "\\boxed{1.44}")["score"] == 0.0
    ints = mv_row(answer="3", question_type="free_form", answer_type="integer", choices=None)
    assert scorer.score_sample(ints, "The answer is 3.0")["score"] == 1.0
    rows = [floats, ints]
    scored = [scorer.score_sample(floats, "\\boxed{1.5}"), scorer.score_sample(ints, "\\boxed{4}")]
    metrics = scorer.aggregate(rows, scored)
    assert metrics["accuracy"] == 50.0 and scorer.primary in metrics


def test_mathverse_accuracy_per_problem_version():
    scorer = get_scorer("mathverse")
    rows = [
        {"id": "1", "answer": "B", "question_type": "multi-choice", "problem_version": "Text Lite",
         "question_hub": "Find x.\nChoices:\nA:30\nB:60", "question": "..."},
        {"id": "2", "answer": "\\frac{1}{2}", "question_type": "free-form", "problem_version": "Vision Only",
         "question": "..."},
        {"id": "3", "answer": "5", "question_type": "free-form", "problem_version": "Vision Only", "question": "..."},
    ]
    responses = ["Thus \\boxed{60}.", "The answer is 0.5", "\\boxed{6}"]
    scored = [scorer.score_sample(r, t) for r, t in zip(rows, responses)]
    assert [s["score"] for s in scored] == [1.0, 1.0, 0.0]
    metrics = scorer.aggregate(rows, scored)
    assert metrics["accuracy_text_lite"] == 100.0 and metrics["accuracy_vision_only"] == 50.0
    assert metrics["accuracy"] == pytest.approx(200 / 3)


def test_mathvision_boxed_options_and_equivalence():
    scorer = get_scorer("mathvision")
    mc = {"id": "7", "answer": "C", "options": ["1", "2", "3", "4", "5"], "level": 2}
    free = {"id": "8", "answer": "\\sqrt{2}", "options": [], "level": 3}
    assert scorer.score_sample(mc, "... \\boxed{C}")["score"] == 1.0
    assert scorer.score_sample(mc, "... \\boxed{3}")["score"] == 1.0  # the option's text
    assert scorer.score_sample(mc, "... \\boxed{D}")["score"] == 0.0
    assert scorer.score_sample(free, "so \\boxed{2^{1/2}}")["score"] == 1.0
    assert scorer.score_sample(free, "so \\boxed{2}")["score"] == 0.0


def wemath_rows(composite_id: str, n_steps: int) -> list[dict]:
    keys = [f"{n_steps}steps_{i}" for i in range(1, n_steps + 1)] + [f"{n_steps}steps_multi"]
    return [{"id": f"{composite_id}_{k}", "ID": composite_id, "key": k, "answer": "A",
             "option": "A. 1; B. 2; C. 3; D. 4"} for k in keys]


def score_wemath(rows, right: list[bool]):
    scorer = get_scorer("wemath")
    scored = [scorer.score_sample(r, "\\boxed{A}" if ok else "\\boxed{B}") for r, ok in zip(rows, right)]
    return scorer.aggregate(rows, scored)


def test_wemath_right_composite_with_wrong_steps_is_rote_memorisation():
    metrics = score_wemath(wemath_rows("1", 2), [False, False, True])  # steps wrong, composite right
    assert metrics["RM_strict"] == 100.0 and metrics["RM_loose"] == 100.0
    assert metrics["CM_strict"] == 0.0 and metrics["CM_loose"] == 0.0
    assert metrics["score_strict"] == 0.0 and metrics["score_loose"] == 0.0


def test_wemath_four_dimensions_strict_and_loose():
    rows = wemath_rows("1", 2) + wemath_rows("2", 2) + wemath_rows("3", 3) + wemath_rows("4", 2)
    right = ([True, False, True]           # one step right, composite right: CM loose, RM strict
             + [True, True, False]         # steps right, composite wrong: IG
             + [True, True, True, True]    # complete mastery
             + [False, True, False])       # IK
    m = score_wemath(rows, right)
    assert m["n_composites"] == 4
    assert (m["IK"], m["IG"], m["CM_strict"], m["CM_loose"]) == (25.0, 25.0, 25.0, 50.0)
    assert m["RM_strict"] == 50.0 and m["RM_loose"] == 0.0   # RM over CM + RM
    assert m["score_strict"] == pytest.approx(100 * (4 - 0.5 - 1 - 1) / 4)
    assert m["score_loose"] == pytest.approx(100 * (4 - 0.5 - 0 - 1) / 4)


def test_wemath_incomplete_composite_is_left_out_and_counted():
    rows = wemath_rows("1", 2)[:2] + wemath_rows("2", 2)
    m = score_wemath(rows, [True, True, True, True, True])
    assert m["n_composites"] == 1 and m["n_incomplete_composites"] == 1 and m["CM_strict"] == 100.0


def test_unknown_benchmark_is_named():
    with pytest.raises(KeyError, match="no scorer for benchmark 'nope'"):
        get_scorer("nope")
    assert {"mathvista", "wemath", "chartmimic", "mme", "shapes_count"} <= set(scorer_names())


def test_mathvision_accuracy_per_level():
    scorer = get_scorer("mathvision")
    rows = [{"id": "1", "answer": "3", "level": 1}, {"id": "2", "answer": "4", "level": 1},
            {"id": "3", "answer": "5", "level": 2}]
    scored = [scorer.score_sample(r, t) for r, t in zip(rows, ["\\boxed{3}", "\\boxed{5}", "\\boxed{5}"])]
    assert scorer.aggregate(rows, scored) == {"accuracy": pytest.approx(200 / 3),
                                              "accuracy_level_1": 50.0, "accuracy_level_2": 100.0}
