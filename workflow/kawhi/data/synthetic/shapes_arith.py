"""shapes_arith (math-style): arithmetic on what a 2x2 grid of shapes shows.

Each question states a rule that turns shapes into points or coins; the solution reads the cells,
then applies the rule in one or two arithmetic steps. Three difficulties: add a value per shape,
multiply a colour count, or a count-multiply-subtract chain. Options are four consecutive numbers
around the answer (chance 25%).
"""

from __future__ import annotations

import random

from kawhi.data.synthetic.grid import (cells_sentence, colors_with, count, count_sentence, grid_facts, objects,
                                       place)
from kawhi.data.synthetic.spec import Item, QuestionType, SuiteSpec, number_options

COLORS = ("red", "green", "blue")
QUESTION_TYPES = (QuestionType("weighted_sum", 4), QuestionType("product", 4), QuestionType("remaining", 4))


def sample(rng: random.Random, qtype: QuestionType, image_size: int) -> list[Item]:
    if qtype.name == "weighted_sum":
        worth = {c: rng.randint(1, 3) for c in COLORS}
        cells = place(rng, [rng.choice(COLORS) for _ in range(rng.randint(2, 4))])
        terms = [worth[c] for _, c, _ in objects(cells)]
        answer = sum(terms)
        question = (f"Red shapes are worth {worth['red']} points, green shapes {worth['green']} and "
                    f"blue shapes {worth['blue']}. How many points are in the picture?")
        steps = [f"{' + '.join(map(str, terms))} = {answer}."]
    elif qtype.name == "product":
        color = rng.choice(COLORS)
        k, value = rng.randint(1, 3), rng.randint(2, 4)
        cells = place(rng, colors_with(rng, COLORS, {color: k}, fill_max=4 - k))
        answer = k * value
        question = (f"Each {color} shape is worth {value} points and other shapes are worth nothing. "
                    f"How many points are in the picture?")
        steps = [count_sentence(color, k), f"{k} x {value} = {answer}."]
    elif qtype.name == "remaining":
        color = rng.choice(COLORS)
        k, price = rng.randint(1, 3), rng.randint(1, 3)
        cells = place(rng, colors_with(rng, COLORS, {color: k}, fill_max=4 - k))
        cost = k * price
        coins = cost + rng.randint(0, 5)
        answer = coins - cost
        question = (f"You have {coins} coins and each {color} shape costs {price} coins. "
                    f"How many coins are left after buying every {color} shape?")
        steps = [count_sentence(color, k), f"{k} x {price} = {cost}. {coins} - {cost} = {answer}."]
    else:
        raise ValueError(f"shapes_arith has no question type {qtype.name!r}")
    assert count(cells) >= 1
    image, facts, key = grid_facts(cells, image_size, rng, count_colors=COLORS)
    solution = "\n\n".join([cells_sentence(cells)] + steps)
    options = number_options(rng, answer)
    return [Item(question, str(answer), options, solution, qtype.name, facts, image, key)]


SPEC = SuiteSpec(
    name="shapes_arith",
    kind="math",
    description="Arithmetic on a 2x2 grid of shapes: sum per-colour points, multiply a colour count, "
                "or buy shapes with coins and give the change (4 numeric options).",
    question_types=QUESTION_TYPES,
    sample=sample,
)
