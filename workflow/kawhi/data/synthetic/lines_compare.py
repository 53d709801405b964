"""lines_compare (chart-style): one line over points 1..4 (values 1..4); compare its points.

Questions: the highest value on the line, the lowest, and how far apart the two are. The facts are
heights ("Highest: 4. Lowest: 1."), not positions: the Qwen2.5-VL-class tower has no absolute position
embedding, and "at which point" questions stayed at chance for its tiny model. Every answer is drawn
uniformly over its four options first, then a line is built for it; chance 25%.
"""

from __future__ import annotations

import random

from kawhi.data.render import render_lines
from kawhi.data.synthetic.spec import Item, QuestionType, SuiteSpec, picture_key

COLORS = ("red", "green", "blue")
POINTS = 4
QUESTION_TYPES = (QuestionType("highest", 4), QuestionType("lowest", 4), QuestionType("range", 4))


def _line_between(rng: random.Random, low: int, high: int) -> list[int]:
    """Values in [low, high] at points 1..4 that reach both ends."""
    values = [rng.randint(low, high) for _ in range(POINTS)]
    ends = rng.sample(range(POINTS), 2)
    values[ends[0]], values[ends[1]] = low, high
    return values


def sample(rng: random.Random, qtype: QuestionType, image_size: int) -> list[Item]:
    if qtype.name == "highest":
        high = rng.randint(1, 4)
        values = _line_between(rng, rng.randint(1, high), high)
        question = "What is the highest value on the line?"
        answer, options, steps = high, ["1", "2", "3", "4"], [f"Highest: {high}."]
    elif qtype.name == "lowest":
        low = rng.randint(1, 4)
        values = _line_between(rng, low, rng.randint(low, 4))
        question = "What is the lowest value on the line?"
        answer, options, steps = low, ["1", "2", "3", "4"], [f"Lowest: {low}."]
    elif qtype.name == "range":
        gap = rng.randint(0, 3)
        low = rng.randint(1, 4 - gap)
        values = _line_between(rng, low, low + gap)
        question = "How far apart are the highest and the lowest value on the line?"
        answer, options = gap, ["0", "1", "2", "3"]
        steps = [f"Highest: {low + gap}. Lowest: {low}.", f"{low + gap} - {low} = {gap}."]
    else:
        raise ValueError(f"lines_compare has no question type {qtype.name!r}")
    color = rng.choice(COLORS)
    image, boxes = render_lines({color: values}, image_size, rng)
    facts = {"layout": "line chart, points 1..4 left to right, values 1..4",
             "values": {"highest": {"value": max(values)}, "lowest": {"value": min(values)},
                        **{f"{color} at point {i + 1}": {"value": v} for i, v in enumerate(values)}},
             "boxes": {**boxes, "highest": boxes[f"{color} at point {values.index(max(values)) + 1}"],
                       "lowest": boxes[f"{color} at point {values.index(min(values)) + 1}"]}}
    return [Item(question, str(answer), options, "\n\n".join(steps), qtype.name, facts, image, picture_key(image))]


SPEC = SuiteSpec(
    name="lines_compare",
    kind="chart",
    description="Line chart of one line over 4 points (values 1..4): its highest value, its lowest value, "
                "and how far apart they are (4 options).",
    question_types=QUESTION_TYPES,
    sample=sample,
)
