"""mme_synth (MME-style): yes/no perception questions, two per picture (one Yes, one No).

Four of MME's perception subtasks, under MME's names: existence, count, position, color. As in MME,
both questions of a picture belong to one subtask and share its ``question_id``; MME's score counts
a picture's acc+ only when both are right. Pictures are 2x2 grids of 1-4 shapes of distinct
colours, so "the red circle" always names one object and its colour alone identifies it; the No of an
existence or color pair names a colour absent from the picture. Every answer is thus decidable from the cells'
colours (and, for count, the number of filled cells): a one-glance fact, since the model must commit
to Yes/No before it states any fact.
"""

from __future__ import annotations

import itertools
import random

from kawhi.data.render import COLORS as COLOR_RGB, GRID_POSITIONS, SHAPES
from kawhi.data.synthetic.grid import Cells, cells_sentence, grid_facts, objects
from kawhi.data.synthetic.spec import Item, QuestionType, SuiteSpec

COLORS = tuple(COLOR_RGB)
CATEGORIES = ("existence", "count", "position", "color")
QUESTION_TYPES = tuple(QuestionType(c, 0) for c in CATEGORIES)
_SIDES = {"left": ("top left", "bottom left"), "right": ("top right", "bottom right"),
          "top": ("top left", "top right"), "bottom": ("bottom left", "bottom right")}
_OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}


def _scene(rng: random.Random, max_shapes: int = 4) -> Cells:
    kinds = [(c, rng.choice(SHAPES)) for c in rng.sample(COLORS, rng.randint(1, max_shapes))]
    positions = rng.sample(list(GRID_POSITIONS), len(kinds))
    cells: Cells = {p: None for p in GRID_POSITIONS}
    for p, kind in zip(positions, kinds):
        cells[p] = kind
    return cells


def _questions(rng: random.Random, category: str, cells: Cells) -> list[tuple[str, str, str]]:
    """(question, answer, conclusion) for the Yes and the No question of one picture."""
    present = objects(cells)
    position, color, shape = rng.choice(present)
    if category == "existence":
        absent = [k for k in itertools.product(COLORS, SHAPES) if k[0] not in {c for _, c, _ in present}]
        ac, ash = rng.choice(absent)
        return [(f"Is there a {color} {shape} in the picture?", "Yes", f"{color.capitalize()} {shape}: {position}."),
                (f"Is there a {ac} {ash} in the picture?", "No", f"{ac.capitalize()} {ash}: none.")]
    if category == "count":
        n = len(present)
        # The false count is two or more away: a coarse "few or many" judgement, not an exact count.
        wrong = rng.choice([m for m in range(1, 5) if abs(m - n) >= 2])
        return [(f"Are there {n} shapes in the picture?", "Yes", f"Shapes: {n}."),
                (f"Are there {wrong} shapes in the picture?", "No", f"Shapes: {n}.")]
    if category == "position":
        side = rng.choice([s for s, cells_on in _SIDES.items() if position in cells_on])
        where = f"{color.capitalize()} {shape}: {position}."
        return [(f"Is the {color} {shape} on the {side} side of the picture?", "Yes", where),
                (f"Is the {color} {shape} on the {_OPPOSITE[side]} side of the picture?", "No", where)]
    if category == "color":
        # The false colour is absent from the picture (as existence's No): the answer is one colour read.
        other = rng.choice([c for c in COLORS if c not in {c2 for _, c2, _ in present}])
        what = f"{position.capitalize()}: {color} {shape}."
        return [(f"Is the shape in the {position} {color}?", "Yes", what),
                (f"Is the shape in the {position} {other}?", "No", what)]
    raise ValueError(f"mme_synth has no category {category!r}; expected one of {CATEGORIES}")


def sample(rng: random.Random, qtype: QuestionType, image_size: int) -> list[Item]:
    # An existence or color No needs a colour that is absent, so those pictures hold at most three shapes.
    cells = _scene(rng, max_shapes=3 if qtype.name in ("existence", "color") else 4)
    image, facts, key = grid_facts(cells, image_size, rng)
    listing = cells_sentence(cells, with_shape=True)
    return [Item(q, a, [], f"{listing}\n\n{conclusion}", qtype.name, facts, image, key)
            for q, a, conclusion in _questions(rng, qtype.name, cells)]


SPEC = SuiteSpec(
    name="mme_synth",
    kind="mme",
    description="MME-style yes/no perception on a 2x2 grid of shapes: existence, count, position, color; "
                "two questions per picture, one Yes and one No (chance 50% acc, 25% acc+).",
    question_types=QUESTION_TYPES,
    sample=sample,
)
