"""Answer extraction and equivalence (kawhi.data.answers): the one rule used by rewards and scorers."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kawhi.data.answers import extract_answer, extract_boxed, is_equivalent, match_option


@pytest.mark.parametrize("text, expected", [
    (r"so \boxed{3}.", "3"),
    (r"\boxed{1} then \boxed{2}", "2"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
    (r"\boxed{a{b{c}}d}", "a{b{c}}d"),
    (r"\fbox{7}", "7"),
    ("no box here", None),
    (r"\boxed{unterminated", None),
    ("", None),
])
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


@pytest.mark.parametrize("text, options, expected", [
    (r"First.\n\nThe answer is \boxed{12}.", None, "12"),
    ("So the answer is 42.", None, "42"),
    ("Answer: $7$", None, "7"),
    ("there are 3 then 9 circles", None, "9"),
    ("I pick (B).", ["x", "y", "z"], "B"),
    (r"\boxed{C}", ["x", "y", "z"], "C"),
    (r"\boxed{y}", ["x", "y", "z"], "B"),
    ("The answer is (A) x", ["x", "y"], "A"),
    ("nothing at all", None, None),
    (None, None, None),
])
def test_extract_answer(text, options, expected):
    assert extract_answer(text, options) == expected


@pytest.mark.parametrize("pred, gold", [
    ("0.5", "1/2"), (r"\boxed{3}", "3"), (r"\frac{1}{2}", "0.5"), ("3.0", "3"), ("1,000", "1000"),
    (r"5 \text{cm}", "5"), ("2x+1", "1+2x"), ("Yes", "yes"), ("red.", "Red"),
])
def test_equivalent_forms_agree(pred, gold):
    assert is_equivalent(pred, gold)


@pytest.mark.parametrize("pred, gold", [
    ("4", "3"), ("0.51", "1/2"), ("red", "blue"), (None, "3"), ("", "3"), ("3", None), (r"\boxed{}", "3"),
])
def test_wrong_answers_rejected(pred, gold):
    assert not is_equivalent(pred, gold)


def test_units_kept_when_not_stripped():
    assert is_equivalent(r"5 \text{cm}", "5", strip_units=True)
    assert not is_equivalent(r"5 \text{ cm}", "6", strip_units=False)


@settings(max_examples=25, deadline=None)
@given(st.integers(-50, 50), st.integers(1, 12))
def test_fraction_and_decimal_forms_equal(num, den):
    value = Fraction(num, den)
    as_fraction = f"{value.numerator}/{value.denominator}" if value.denominator != 1 else str(value.numerator)
    assert is_equivalent(as_fraction, rf"\frac{{{num}}}{{{den}}}")
    assert is_equivalent(rf"\boxed{{{as_fraction}}}", as_fraction)
    assert not is_equivalent(str(value.numerator + value.denominator), as_fraction)


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet="abc{}0123", max_size=12).filter(lambda s: s.count("{") == s.count("}")
                                                          and all(s[:i].count("{") >= s[:i].count("}")
                                                                  for i in range(len(s) + 1))))
def test_boxed_roundtrip_balanced_content(content):
    assert extract_boxed(rf"pre \boxed{{{content}}} post") == content.strip()


def test_match_option_letter_or_text():
    options = ["circle", "square", "triangle"]
    assert match_option("B", options, "square")
    assert match_option("(B)", options, "B")
    assert match_option("square", options, "B")
    assert match_option(r"so \boxed{C}", options, "C")
    assert not match_option("A", options, "B")
    assert not match_option(None, options, "B")
    with pytest.raises(ValueError, match="neither an option letter"):
        match_option("A", options, "hexagon")
