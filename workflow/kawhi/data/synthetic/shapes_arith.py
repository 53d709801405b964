"""shapes_arith (math-style): one big shape; its colour picks a number from the question.

The question gives every colour a value (a fresh permutation of 1-4 each time); the solution reads the
shape's colour ("Shape: green."), looks its value up in the question ("Green is worth 2."), and then
multiplies or subtracts in text. Chance is 25%: four options, the colour drawn uniformly.
"""

from __future__ import annotations

import random

from kawhi.data.render import COLORS as COLOR_RGB, SHAPES, render_shape
from kawhi.data.synthetic.spec import Item, QuestionType, SuiteSpec, number_options, picture_key

COLORS = tuple(COLOR_RGB)
QUESTION_TYPES = (QuestionType("worth", 4), QuestionType("product", 4), QuestionType("change", 4))


def _value_rule(values: dict[str, int], verb: str, unit: str) -> str:
    """"Red shapes are worth 3 points, green 1, blue 4 and yellow 2." -- every colour, in a fixed order."""
    first, *rest = COLORS
    items = [f"{c} {values[c]}" for c in rest]
    unit = unit.removesuffix("s") if values[first] == 1 else unit
    return (f"{first.capitalize()} shapes {verb} {values[first]} {unit}, " + ", ".join(items[:-1])
            + f" and {items[-1]}.")


def sample(rng: random.Random, qtype: QuestionType, image_size: int) -> list[Item]:
    color, shape = rng.choice(COLORS), rng.choice(SHAPES)
    values = dict(zip(COLORS, rng.sample(range(1, 5), 4)))
    value = values[color]
    if qtype.name == "worth":
        question = f"{_value_rule(values, 'are worth', 'points')} How many points is the shape worth?"
        answer, options = value, ["1", "2", "3", "4"]
        steps = [f"{color.capitalize()} is worth {value}."]
    elif qtype.name == "product":
        k = rng.randint(2, 3)
        question = f"{_value_rule(values, 'are worth', 'points')} How many points are {k} shapes like this one worth?"
        answer = k * value
        options = number_options(rng, answer, low=1)
        steps = [f"{color.capitalize()} is worth {value}.", f"{k} x {value} = {answer}."]
    elif qtype.name == "change":
        coins = value + rng.randint(0, 5)
        question = (f"{_value_rule(values, 'cost', 'coins')} You have {coins} coins and buy the shape. "
                    f"How many coins are left?")
        answer = coins - value
        options = number_options(rng, answer)
        steps = [f"{color.capitalize()} costs {value}.", f"{coins} - {value} = {answer}."]
    else:
        raise ValueError(f"shapes_arith has no question type {qtype.name!r}")
    image, boxes = render_shape(color, shape, image_size, rng)
    facts = {"layout": "one big shape", "values": {"shape": {"color": color, "shape": shape}}, "boxes": boxes}
    solution = "\n\n".join([f"Shape: {color}."] + steps)
    return [Item(question, str(answer), options, solution, qtype.name, facts, image, picture_key(image))]


SPEC = SuiteSpec(
    name="shapes_arith",
    kind="math",
    description="One big shape; its colour picks a value from the question (a permutation of 1-4), "
                "which is read off, multiplied or subtracted from coins (4 numeric options).",
    question_types=QUESTION_TYPES,
    sample=sample,
)
