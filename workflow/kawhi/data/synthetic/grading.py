"""Exact grading of responses to synthetic rows: correctness and the error category of Figure 1.

The reference solutions use a small fixed grammar, so a response that follows it can be parsed back:

- visual facts: "Shapes: 3." / "Red: 2." (counts), "Cells: red, empty, blue square, red." (2x2 grid,
  reading order), "Top left: red circle." / "Red circle: top left." / "Red circle: none." (grid
  objects), "Shape: green." (one big shape), "Bar: red 3." / "Tallest: red 3." (bar values),
  "Highest: 4." / "Lowest: 1." (line heights);
- arithmetic steps: "a + b = c", "a x b = c", "a - b = c" (any chain of + - x);
- the final answer: "\\boxed{...}" or "the answer is ..." (answers.extract_answer).

Categories, checked in this order: correct; AO (no reasoning, only an answer); VP (a stated fact
contradicts the ground truth); CE (facts right, an arithmetic step wrong); RAE (facts and arithmetic
right, a final answer given, and still wrong: the rule applied was wrong); Others (nothing parseable,
or no final answer).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from kawhi.data.answers import extract_answer, extract_boxed, is_equivalent, match_option
from kawhi.data.render import COLORS, GRID_POSITIONS, SHAPES
from kawhi.data.synthetic.registry import get_suite

ERROR_CATEGORIES = ("correct", "VP", "AO", "CE", "RAE", "Others")
GRID_SUITES = ("shapes_count", "mme_synth")

_COLOR = "|".join(COLORS)
_SHAPE = "|".join(SHAPES)
_POSITION = "|".join(GRID_POSITIONS)
_FLAGS = re.IGNORECASE

_CELLS = re.compile(r"cells\s*:\s*([^\n]*)", _FLAGS)
_COUNT = re.compile(rf"\b(shapes|{_COLOR})\s*:\s*(\d+)(?!\s*[\d,+\-x*×=])", _FLAGS)
_CELL_IS = re.compile(rf"\b({_POSITION})\s*:\s*({_COLOR}|empty)(?:\s+({_SHAPE}))?", _FLAGS)
_OBJECT_AT = re.compile(rf"\b({_COLOR})\s+({_SHAPE})\s*:\s*({_POSITION}|none)", _FLAGS)
_SHAPE_IS = re.compile(rf"\bshape\s*:\s*(\w+)", _FLAGS)
_BAR = re.compile(r"\b(?:bar|tallest)\s*:\s*(\w+)\s+(\d+)", _FLAGS)
_EXTREME = re.compile(r"\b(highest|lowest)\s*:\s*(\d+)", _FLAGS)
_EQUATION = re.compile(r"(?<![\d.])(\d+(?:\s*[-+x*×]\s*\d+)+)\s*=\s*(-?\d+)")
_ANSWER_ONLY = re.compile(
    r"\s*(?:so\s*,?\s*)?(?:the\s+)?(?:final\s+)?(?:answer\s*(?:is|:)\s*:?\s*)?"
    r"(?:\\boxed\{[^{}]*\}|[\w()]{1,12})\s*[.!]?\s*", _FLAGS)


# ---- facts ------------------------------------------------------------------------------------------

def _cell_statement(text: str) -> dict[str, Any]:
    """One item of a "Cells:" list -> stated attributes ("empty" -> no colour, no shape)."""
    words = text.strip().strip(".").lower().split()
    if not words:
        return {}
    if words[0] in ("empty", "none", "nothing"):
        return {"color": None}
    stated: dict[str, Any] = {}
    for word in words:
        if word in COLORS:
            stated["color"] = word
        elif word in SHAPES:
            stated["shape"] = word
    return stated or {"color": words[0]}  # an unknown colour word is still a (wrong) statement


def _grid_statements(response: str) -> list[tuple[str, dict[str, Any]]]:
    stated: list[tuple[str, dict[str, Any]]] = []
    for match in _CELLS.finditer(response):
        listing = match.group(1).split(".")[0] if "," in match.group(1) else match.group(1)
        for position, item in zip(GRID_POSITIONS, listing.split(",")):
            if attrs := _cell_statement(item):
                stated.append((position, attrs))
    for match in _COUNT.finditer(response):
        label = match.group(1).lower()
        stated.append(("shapes" if label == "shapes" else f"{label} shapes", {"count": int(match.group(2))}))
    for match in _CELL_IS.finditer(response):
        color = match.group(2).lower()
        attrs: dict[str, Any] = {"color": None if color == "empty" else color}
        if match.group(3):
            attrs["shape"] = match.group(3).lower()
        stated.append((match.group(1).lower(), attrs))
    for match in _OBJECT_AT.finditer(response):
        color, shape, where = (g.lower() for g in match.groups())
        stated.append((f"{color} {shape}", {"position": None if where == "none" else where}))
    return stated


def _shape_statements(response: str) -> list[tuple[str, dict[str, Any]]]:
    return [("shape", {"color": m.group(1).lower()}) for m in _SHAPE_IS.finditer(response)]


def _bar_statements(response: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{m.group(1).lower()} bar", {"value": int(m.group(2))}) for m in _BAR.finditer(response)]


def _line_statements(response: str) -> list[tuple[str, dict[str, Any]]]:
    return [(m.group(1).lower(), {"value": int(m.group(2))}) for m in _EXTREME.finditer(response)]


def stated_facts(suite: str, response: str) -> list[tuple[str, dict[str, Any]]]:
    """The visual facts a response states, as (fact key, attributes) in order of appearance."""
    get_suite(suite)
    if suite in GRID_SUITES:
        return _grid_statements(response)
    if suite == "shapes_arith":
        return _shape_statements(response)
    if suite == "bars_lookup":
        return _bar_statements(response)
    if suite == "lines_compare":
        return _line_statements(response)
    raise KeyError(f"no fact grammar for suite {suite!r}")


def _truth(facts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Ground-truth values, plus where each grid object is (so "Red circle: none." can be checked)."""
    values = dict(facts["values"])
    for position in GRID_POSITIONS:
        cell = values.get(position)
        if cell and cell.get("color"):
            values[f"{cell['color']} {cell['shape']}"] = {"position": position}
    return values


def _is_wrong(key: str, attrs: dict[str, Any], truth: dict[str, dict[str, Any]]) -> bool:
    if key not in truth:
        # Only an object's absence can be stated about something not in the picture.
        return not (attrs == {"position": None})
    return any(truth[key].get(name) != value for name, value in attrs.items())


def suite_of(row: dict[str, Any]) -> str:
    """The row's suite: its ``suite`` column, else ``benchmark`` (an evaluation samples line)."""
    name = row.get("suite") or row.get("benchmark")
    if not name:
        raise KeyError(f"row {row.get('id')!r} names no suite (neither 'suite' nor 'benchmark' is set)")
    return str(name)


def _row_facts(row: dict[str, Any]) -> dict[str, Any]:
    facts = row["facts"]
    try:
        return json.loads(facts) if isinstance(facts, str) else facts
    except json.JSONDecodeError as err:
        raise ValueError(f"row {row.get('id')!r}: 'facts' is not valid JSON ({err})") from err


def misread_facts(row: dict[str, Any], response: str) -> list[str]:
    """Keys of the facts the response states wrongly ("top left", "red bar", "blue at point 3", ...),
    each once, in order of first appearance."""
    truth = _truth(_row_facts(row))
    wrong = [key for key, attrs in stated_facts(suite_of(row), response) if _is_wrong(key, attrs, truth)]
    return list(dict.fromkeys(wrong))


# ---- arithmetic -------------------------------------------------------------------------------------

def _evaluate(expression: str) -> int:
    """Value of a chain of integers joined by + - x (x binds tighter), e.g. "10 - 2 x 3"."""
    tokens = re.findall(r"\d+|[-+x*×]", expression)
    terms: list[int] = []
    sign, product, pending_mul = 1, None, False
    for token in tokens:
        if token.isdigit():
            value = int(token)
            product = product * value if pending_mul and product is not None else value
            pending_mul = False
        elif token in "x*×":
            pending_mul = True
        else:
            terms.append(sign * (product or 0))
            sign, product = (1 if token == "+" else -1), None
    terms.append(sign * (product or 0))
    return sum(terms)


def equations(response: str) -> list[tuple[str, int, bool]]:
    """Every "expression = result" step: (text, stated result, whether it is right)."""
    return [(m.group(0), int(m.group(2)), _evaluate(m.group(1)) == int(m.group(2)))
            for m in _EQUATION.finditer(response)]


# ---- answers ----------------------------------------------------------------------------------------

def yes_no_answer(response: str) -> str | None:
    """"yes"/"no": the first word (MME's rule), else the boxed / "the answer is" answer's first word."""
    words = re.findall(r"[a-z]+", response.lower())
    if words and words[0] in ("yes", "no"):
        return words[0]
    final = extract_answer(response)
    words = re.findall(r"[a-z]+", (final or "").lower())
    return words[0] if words and words[0] in ("yes", "no") else None


def is_correct(row: dict[str, Any], response: str) -> bool:
    """The suite's exact-answer check.

    Yes/no suites: ``yes_no_answer``. Multiple choice: the answer (boxed, "the answer is", an option
    letter, or the last number, as ``answers.extract_answer`` finds it) names the gold option by letter
    or text. Anything else: ``answers.is_equivalent``.
    """
    spec = get_suite(suite_of(row))
    if spec.yes_no:
        return yes_no_answer(response) == str(row["answer"]).strip().lower()
    options = [str(o) for o in (row.get("options") if row.get("options") is not None else [])]
    if options:
        return match_option(extract_answer(response, options), options, str(row["answer"]))
    return is_equivalent(extract_answer(response), str(row["answer"]))


def _gives_final_answer(row: dict[str, Any], response: str) -> bool:
    if get_suite(suite_of(row)).yes_no:
        return yes_no_answer(response) is not None
    return extract_boxed(response) is not None or re.search(r"answer\s*(?:is|:)", response, _FLAGS) is not None


def reasoning_paragraphs(response: str) -> list[str]:
    """The paragraphs that are more than a bare final answer ("The answer is \\boxed{3}.", "Yes")."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", response) if p.strip()]
    return [p for p in paragraphs if not _ANSWER_ONLY.fullmatch(p)]


def classify_error(row: dict[str, Any], response: str) -> str:
    """One of ERROR_CATEGORIES for ``response`` to ``row`` (see the module docstring for the order)."""
    if is_correct(row, response):
        return "correct"
    if not reasoning_paragraphs(response):
        return "AO"
    stated = stated_facts(suite_of(row), response)
    if misread_facts(row, response):
        return "VP"
    steps = equations(response)
    if any(not ok for _, _, ok in steps):
        return "CE"
    if (stated or steps) and _gives_final_answer(row, response):
        return "RAE"
    return "Others"


def error_counts(rows: Iterable[dict[str, Any]], responses: Iterable[str]) -> dict[str, int]:
    """How many responses fall in each category (every category present, zeros included)."""
    counts = dict.fromkeys(ERROR_CATEGORIES, 0)
    for row, response in zip(rows, responses, strict=True):
        counts[classify_error(row, response)] += 1
    return counts
