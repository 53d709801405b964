"""bars_lookup (chart-style): read a bar chart, then answer or compute.

Two pictures: a single bar two tokens wide in one of two slots (value 1..4 on the grid lines), and
three bars in four slots of which one stands two or more steps above the others. Questions: the
value of the single bar, that value plus a number from the question, and the colour of the tallest
of three bars. The facts are the single bar ("Bar: blue 3.") or the tallest bar ("Tallest: green
4."): one reading each, of the kind the tiny models learn in a few hundred SFT steps. Answers are
uniform over four options; chance 25%.
"""

from __future__ import annotations

import random

from kawhi.data.render import COLORS as COLOR_RGB, render_bars
from kawhi.data.synthetic.spec import Item, QuestionType, SuiteSpec, number_options, picture_key

COLORS = tuple(COLOR_RGB)
QUESTION_TYPES = (QuestionType("value", 4), QuestionType("more", 4), QuestionType("tallest", 4))


def _single_bar(rng: random.Random, value: int) -> tuple[list[tuple[int, str, int]], int]:
    return [(rng.randrange(2), rng.choice(COLORS), value)], 2


def _tallest_of_three(rng: random.Random, color: str) -> tuple[list[tuple[int, str, int]], int]:
    """Three bars in four slots; ``color`` is the tallest, two or more steps above the others."""
    top = rng.randint(3, 4)
    colors = [color] + rng.sample([c for c in COLORS if c != color], 2)
    rng.shuffle(colors)
    slots = sorted(rng.sample(range(4), 3))
    return [(s, c, top if c == color else rng.randint(1, top - 2)) for s, c in zip(slots, colors)], 4


def sample(rng: random.Random, qtype: QuestionType, image_size: int) -> list[Item]:
    if qtype.name == "value":
        value = rng.randint(1, 4)
        bars, slots = _single_bar(rng, value)
        question = "What is the value of the bar?"
        answer, options, steps = value, ["1", "2", "3", "4"], []
    elif qtype.name == "more":
        value, k = rng.randint(1, 4), rng.randint(1, 3)
        bars, slots = _single_bar(rng, value)
        question = f"The bar shows how many apples were sold on Monday. On Tuesday {k} more were sold. How many apples were sold on Tuesday?"
        answer = value + k
        options = number_options(rng, answer, low=2)
        steps = [f"{value} + {k} = {answer}."]
    elif qtype.name == "tallest":
        answer = rng.choice(COLORS)
        bars, slots = _tallest_of_three(rng, answer)
        question = "Which bar is the tallest?"
        options, steps = list(COLORS), []
    else:
        raise ValueError(f"bars_lookup has no question type {qtype.name!r}")
    image, boxes = render_bars(bars, image_size, rng, slots=slots)
    if len(bars) == 1:
        (_, color, value), = bars
        reading = f"Bar: {color} {value}."
    else:
        _, color, value = max(bars, key=lambda b: b[2])
        reading = f"Tallest: {color} {value}."
    facts = {"layout": f"bar chart, {slots} slots left to right, values 1..4",
             "values": {f"{c} bar": {"value": v, "slot": s} for s, c, v in bars}, "boxes": boxes}
    solution = "\n\n".join([reading] + steps)
    return [Item(question, str(answer), options, solution, qtype.name, facts, image, picture_key(image))]


SPEC = SuiteSpec(
    name="bars_lookup",
    kind="chart",
    description="Bar charts: the value of a single bar, that value plus a number from the question, or the "
                "colour of the clearly tallest of three bars (4 options).",
    question_types=QUESTION_TYPES,
    sample=sample,
)
