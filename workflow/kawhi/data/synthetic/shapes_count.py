"""shapes_count (math-style): count the shapes in a 2x2 grid, by colour, and compare two counts.

Easy items count every shape; harder ones count one colour or subtract two colour counts. Answers
are drawn uniformly over the four options before the picture is built, so chance is exactly 25%.
"""

from __future__ import annotations

import random

from kawhi.data.synthetic.grid import cells_sentence, colors_with, count_sentence, grid_facts, place
from kawhi.data.synthetic.spec import Item, QuestionType, SuiteSpec

COLORS = ("red", "green", "blue")
QUESTION_TYPES = (QuestionType("total", 4), QuestionType("color_count", 4), QuestionType("difference", 4))


def sample(rng: random.Random, qtype: QuestionType, image_size: int) -> list[Item]:
    if qtype.name == "total":
        n = rng.randint(1, 4)
        cells = place(rng, [rng.choice(COLORS) for _ in range(n)])
        question = "How many shapes are in the picture?"
        answer, options = n, ["1", "2", "3", "4"]
        steps = [count_sentence("shapes", n)]
    elif qtype.name == "color_count":
        color = rng.choice(COLORS)
        k = rng.randint(0, 3)
        cells = place(rng, colors_with(rng, COLORS, {color: k}, fill_max=4 - k))
        question = f"How many {color} shapes are in the picture?"
        answer, options = k, ["0", "1", "2", "3"]
        steps = [count_sentence(color, k)]
    elif qtype.name == "difference":
        a, b = rng.sample(COLORS, 2)
        d = rng.randint(0, 3)
        nb = rng.randint(0, (4 - d) // 2)
        na = nb + d
        cells = place(rng, colors_with(rng, COLORS, {a: na, b: nb}, fill_max=4 - na - nb))
        question = f"How many more {a} shapes than {b} shapes are in the picture?"
        answer, options = d, ["0", "1", "2", "3"]
        steps = [f"{count_sentence(a, na)} {count_sentence(b, nb)}", f"{na} - {nb} = {d}."]
    else:
        raise ValueError(f"shapes_count has no question type {qtype.name!r}")
    image, facts, key = grid_facts(cells, image_size, rng, count_colors=COLORS)
    solution = "\n\n".join([cells_sentence(cells)] + steps)
    return [Item(question, str(answer), options, solution, qtype.name, facts, image, key)]


SPEC = SuiteSpec(
    name="shapes_count",
    kind="math",
    description="Count big red/green/blue shapes in a 2x2 grid: all shapes, one colour, or how many "
                "more of one colour than another (4 options).",
    question_types=QUESTION_TYPES,
    sample=sample,
)
