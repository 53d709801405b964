"""shapes_count (math-style): count the big shapes in a 2x2 grid, then compute with the count.

The one visual fact is how many cells hold a shape ("Shapes: 3."), which the tiny models read after a
few hundred SFT steps; the question then adds, subtracts or multiplies with it in text. Every answer is
drawn uniformly over its four options before the picture is built, so chance is exactly 25%.
"""

from __future__ import annotations

import random

from kawhi.data.render import COLORS as COLOR_RGB
from kawhi.data.synthetic.grid import count_sentence, grid_facts, place
from kawhi.data.synthetic.spec import Item, QuestionType, SuiteSpec, number_options

COLORS = tuple(COLOR_RGB)
QUESTION_TYPES = (QuestionType("total", 4), QuestionType("more", 4), QuestionType("empty", 4),
                  QuestionType("cost", 4))


def sample(rng: random.Random, qtype: QuestionType, image_size: int) -> list[Item]:
    n = rng.randint(1, 4)
    cells = place(rng, [rng.choice(COLORS) for _ in range(n)])
    steps = [count_sentence("shapes", n)]
    if qtype.name == "total":
        question = "How many shapes are in the picture?"
        answer, options = n, ["1", "2", "3", "4"]
    elif qtype.name == "more":
        k = rng.randint(1, 3)
        added = "1 more shape is" if k == 1 else f"{k} more shapes are"
        question = f"{added} added to the picture. How many shapes are there then?"
        answer = n + k
        options = number_options(rng, answer, low=2)
        steps.append(f"{n} + {k} = {answer}.")
    elif qtype.name == "empty":
        question = "How many cells of the 2x2 grid are empty?"
        answer, options = 4 - n, ["0", "1", "2", "3"]
        steps.append(f"4 - {n} = {answer}.")
    elif qtype.name == "cost":
        price = rng.randint(2, 3)
        question = f"Each shape in the picture costs {price} coins. How many coins do all of them cost?"
        answer = n * price
        options = number_options(rng, answer, low=1)
        steps.append(f"{n} x {price} = {answer}.")
    else:
        raise ValueError(f"shapes_count has no question type {qtype.name!r}")
    image, facts, key = grid_facts(cells, image_size, rng)
    return [Item(question, str(answer), options, "\n\n".join(steps), qtype.name, facts, image, key)]


SPEC = SuiteSpec(
    name="shapes_count",
    kind="math",
    description="Count the big shapes in a 2x2 grid, then add to the count, subtract it from 4 or "
                "multiply it by a price (4 options).",
    question_types=QUESTION_TYPES,
    sample=sample,
)
