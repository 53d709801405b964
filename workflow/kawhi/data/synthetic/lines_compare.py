"""lines_compare (chart-style): a red and a blue line over points 1..4, values 1..4.

Questions: which line is higher at a point (2 options; the lines are two or more steps apart there),
at which point one line peaks (arg-max, 4 options; the peak stands two or more steps above the line's
other points), and how far apart the lines are at a point (difference, 4 options; fine heights). Answers are uniform
over the options; chance is the mean over the three types, (50 + 25 + 25) / 3 = 33.3%.
"""

from __future__ import annotations

import json
import random

from kawhi.data.render import render_lines
from kawhi.data.synthetic.spec import Item, QuestionType, SuiteSpec

COLORS = ("red", "blue")
POINTS = 4
QUESTION_TYPES = (QuestionType("higher_at", 2), QuestionType("argmax", 4), QuestionType("gap", 4))


def _random_line(rng: random.Random) -> list[int]:
    return [rng.randint(1, 4) for _ in range(POINTS)]


def _point_sentence(lines: dict[str, list[int]], x: int) -> str:
    """"Point 3: red 2, blue 4." -- both values at one point."""
    return f"Point {x}: " + ", ".join(f"{c} {lines[c][x - 1]}" for c in COLORS) + "."


def _line_sentence(lines: dict[str, list[int]], color: str) -> str:
    """"Red: 1, 3, 2, 4." -- one line's values at points 1..4."""
    return f"{color.capitalize()}: " + ", ".join(map(str, lines[color])) + "."


def sample(rng: random.Random, qtype: QuestionType, image_size: int) -> list[Item]:
    lines = {c: _random_line(rng) for c in COLORS}
    if qtype.name == "higher_at":
        x, winner = rng.randint(1, POINTS), rng.choice(COLORS)
        loser = next(c for c in COLORS if c != winner)
        low = rng.randint(1, 2)
        lines[loser][x - 1], lines[winner][x - 1] = low, rng.randint(low + 2, 4)
        question = f"At point {x}, which line is higher?"
        answer, options = winner, list(COLORS)
        steps = [_point_sentence(lines, x), f"Higher: {winner}."]
    elif qtype.name == "argmax":
        color, x = rng.choice(COLORS), rng.randint(1, POINTS)
        top = rng.randint(3, 4)
        lines[color] = [top if i == x - 1 else rng.randint(1, top - 2) for i in range(POINTS)]
        question = f"At which point is the {color} line highest?"
        answer, options = str(x), [str(i) for i in range(1, POINTS + 1)]
        steps = [_line_sentence(lines, color), f"Highest: point {x}."]
    elif qtype.name == "gap":
        x, d = rng.randint(1, POINTS), rng.randint(0, 3)
        low = rng.randint(1, 4 - d)
        upper = rng.choice(COLORS)
        lower = next(c for c in COLORS if c != upper)
        lines[upper][x - 1], lines[lower][x - 1] = low + d, low
        question = f"At point {x}, how far apart are the two lines?"
        answer, options = str(d), ["0", "1", "2", "3"]
        steps = [_point_sentence(lines, x), f"{low + d} - {low} = {d}."]
    else:
        raise ValueError(f"lines_compare has no question type {qtype.name!r}")
    image, boxes = render_lines(lines, image_size, rng)
    values = {f"{c} at point {i + 1}": {"value": v} for c in COLORS for i, v in enumerate(lines[c])}
    facts = {"layout": "line chart, points 1..4 left to right, values 1..4", "values": values, "boxes": boxes}
    key = json.dumps(lines, sort_keys=True)
    return [Item(question, answer, options, "\n\n".join(steps), qtype.name, facts, image, key)]


SPEC = SuiteSpec(
    name="lines_compare",
    kind="chart",
    description="Line chart of a red and a blue line over 4 points (values 1..4): which line is higher "
                "at a point (2 options), where a line peaks, and the gap between the lines (4 options).",
    question_types=QUESTION_TYPES,
    sample=sample,
)
