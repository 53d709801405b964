"""Chart scorers on hand-made predictions with known scores, incl. the official edge cases."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from kawhi.eval.scorers import get_scorer
from kawhi.eval.scorers.chartmimic import extract_code
from kawhi.eval.scorers.chartmimic_metrics import chart_type_f1, color_f1, color_similarity, text_f1
from kawhi.eval.scorers.chartqa import relaxed_correctness
from kawhi.eval.scorers.chartqapro import anls_score, chartqapro_score


@pytest.mark.parametrize("target,prediction,ok", [
    ("100", "105", True),        # exactly at the 5% boundary
    ("100", "95", True),
    ("100", "105.1", False),     # just past it
    ("45%", "0.45", True),       # a percentage is divided by 100 first
    ("45%", "46%", True),
    ("45%", "45", False),        # ... so "45" is 100x off, as in the official metric
    ("0", "0.001", False),       # a zero target needs an exact string match
    ("Yes", "yes", True),
    ("Asia", "Europe", False),
])
def test_chartqa_relaxed_correctness(target, prediction, ok):
    assert relaxed_correctness(target, prediction) is ok


def test_chartqa_human_and_augmented_splits():
    scorer = get_scorer("chartqa")
    rows = [{"id": "0", "label": ["45"], "answer": "45", "human_or_machine": 0},
            {"id": "1", "label": ["12%"], "answer": "12%", "human_or_machine": 1},
            {"id": "2", "label": ["Asia"], "answer": "Asia", "human_or_machine": 1}]
    scored = [scorer.score_sample(r, t) for r, t in zip(rows, ["\\boxed{46}", "The answer is 0.12.", "\\boxed{asia}"])]
    assert [s["score"] for s in scored] == [1.0, 1.0, 1.0]
    scored[2] = scorer.score_sample(rows[2], "\\boxed{Europe}")
    m = scorer.aggregate(rows, scored)
    assert m["relaxed_accuracy_human"] == 100.0 and m["relaxed_accuracy_augmented"] == 50.0
    assert m["relaxed_accuracy"] == pytest.approx(200 / 3)


def test_chartqapro_rules_per_question_type():
    assert chartqapro_score("2016", "2017", "Factoid", ["YES"]) == 0.0          # years: exact
    assert chartqapro_score("100", "104", "Factoid", ["NO"]) == 1.0             # numbers: 5%
    assert chartqapro_score("B", "b", "Multi Choice", ["NO"]) == 1.0            # exact, case-insensitive
    # the official script never passes its exact-match switch: Fact Checking falls through to ANLS
    assert chartqapro_score("True", "Tru", "Fact Checking", ["NO"]) == pytest.approx(0.75)
    assert chartqapro_score("United States", "United State", "Factoid", ["NO"]) == pytest.approx(1 - 1 / 13)
    assert chartqapro_score("Germany", "Japan", "Factoid", ["NO"]) == 0.0       # ANLS below 0.5 -> 0
    assert chartqapro_score("[10, 20]", "[10, 25]", "Factoid", ["NO"]) == 0.5   # element-wise lists
    assert chartqapro_score("[10, 20]", "[10]", "Factoid", ["NO"]) == 0.5       # a missing element scores 0
    assert chartqapro_score("abcd", "ab", "Factoid", ["NO"]) == 0.0             # distance exactly 0.5 -> 0 (anls)


def test_chartqapro_last_answer_is_the_target():
    scorer = get_scorer("chartqapro")
    row = {"id": "1", "Answer": ["Sales", "42"], "Question Type": "Conversational", "Year": ["YES", "NO"]}
    assert scorer.score_sample(row, "The answer is 42.")["score"] == 1.0     # last Year flag (NO) applies
    assert scorer.score_sample(row, "The answer is Sales.")["score"] == 0.0
    m = scorer.aggregate([row], [scorer.score_sample(row, "\\boxed{42}")])
    assert m == {"accuracy": 100.0, "accuracy_conversational": 100.0}


@given(st.text(max_size=20), st.text(max_size=20))
def test_anls_is_a_similarity_in_unit_interval(a, b):
    value = anls_score(a, b)
    assert 0.0 <= value <= 1.0 and (value == 0.0 or value > 0.5)
    assert anls_score(a, a) == 1.0


def test_charxiv_descriptive_rules():
    scorer = get_scorer("charxiv_descriptive")
    cases = [("Results", "The title is shown. \\boxed{results}", 1.0), ("1 by 2", "The answer is 1 by 2", 1.0),
             ("Model A, Model B", "Final answer: Model A, Model B", 1.0), ("0.5", "\\boxed{0.50}", 1.0),
             ("Not Applicable", "\\boxed{Epoch}", 0.0), ("12", "The answer is 13", 0.0)]
    for gold, response, expected in cases:
        row = {"id": "x", "descriptive_a": gold, "answer": gold}
        assert scorer.score_sample(row, response)["score"] == expected, (gold, response)


def test_charxiv_reasoning_accuracy_per_answer_type_and_source():
    scorer = get_scorer("charxiv_reasoning")
    rows = [{"id": "a", "reasoning_a": "Model A", "reasoning_a_type": 1, "reasoning_q_source": 3},
            {"id": "b", "reasoning_a": "3.25", "reasoning_a_type": 4, "reasoning_q_source": 3}]
    scored = [scorer.score_sample(rows[0], "\\boxed{model a}"), scorer.score_sample(rows[1], "\\boxed{3.2}")]
    m = scorer.aggregate(rows, scored)
    assert m["accuracy"] == 50.0 and m["accuracy_text_in_chart"] == 100.0 and m["accuracy_number_in_general"] == 0.0
    assert m["accuracy_source_completely_human"] == 50.0


def test_chartmimic_code_extraction_and_official_f1s():
    assert extract_code("Here:\n```python\nimport matplotlib\nx=1\n```\nDone") == "\nimport matplotlib\nx=1\n"
    assert extract_code("no code here") is None
    # text_evaluator._calculate_metrics: multiset match, 0 when either side is empty
    assert text_f1(["a", "b"], ["a", "b"]) == 1.0 and text_f1([], []) == 0.0 and text_f1(["a"], ["b"]) == 0.0
    assert text_f1(["a"], ["a", "a", "b"]) == pytest.approx(2 * 1 * (1 / 3) / (1 + 1 / 3))
    # chart_type_evaluator._calculate_metrics: per-type minimum counts
    assert chart_type_f1({"bar": 2}, {"bar": 1, "plot": 1}) == pytest.approx(0.5)
    # color_utils.calculate_similarity_single: CIEDE2000 similarity; names by equality
    assert color_similarity("#FF0000", "#FF0000") == 1.0 and color_similarity("viridis", "#FF0000") == 0.0
    assert 0.5 < color_similarity("#FF0000", "#EE1111") < 1.0
    assert color_f1(["bar--#FF0000"], ["bar--#FF0000", "plot--#0000FF"]) == pytest.approx(2 * 1 * 0.5 / 1.5)


REFERENCE = """import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3))
ax.bar(['x', 'y'], [3, 5], color='#1f77b4')
ax.set_title('Sales')
ax.set_xlabel('Item')
plt.savefig('out.png')
"""


def test_chartmimic_executes_in_the_sandbox_and_scores_low_level():
    scorer = get_scorer("chartmimic")
    row = {"id": "bar_1", "answer": REFERENCE}
    perfect = scorer.score_sample(row, f"```python\n{REFERENCE}```")
    assert perfect["executed"] and perfect["score"] == 1.0
    recoloured = REFERENCE.replace("#1f77b4", "#ff0000").replace("Sales", "Revenue")
    partial = scorer.score_sample(row, f"```python\n{recoloured}```")
    assert partial["executed"] and partial["layout"] == 1.0 and partial["type"] == 1.0
    assert 0.0 < partial["color"] < 1.0 and partial["text"] == 0.5  # ticks dropped: title and x label remain
    broken = scorer.score_sample(row, "```python\nimport matplotlib.pyplot as plt\nplt.plot(undefined)\n```")
    assert not broken["executed"] and broken["score"] == 0.0 and "NameError" in broken["error"]
    no_code = scorer.score_sample(row, "I cannot draw this.")
    assert not no_code["executed"] and no_code["error"] == "no code in the response"
    m = scorer.aggregate([row] * 4, [perfect, partial, broken, no_code])
    assert m["exec_rate"] == 50.0 and m["low_level"] == pytest.approx(100 * (1 + partial["score"]) / 4)
