"""Scenes of up to four big shapes in a 2x2 grid (shapes_count, mme_synth).

The facts sentence lists the cells in reading order -- "Cells: red, empty, blue square, red." -- so
a response that follows the format can be parsed back into per-cell statements.
"""

from __future__ import annotations

import json
import random
from typing import Sequence

from kawhi.data.render import GRID_POSITIONS, SHAPES, render_grid

Cells = dict[str, tuple[str, str] | None]


def place(rng: random.Random, colors: Sequence[str], shapes: Sequence[str] = SHAPES) -> Cells:
    """Put one shape of each listed colour into a random distinct cell (at most four)."""
    if len(colors) > len(GRID_POSITIONS):
        raise ValueError(f"a 2x2 grid holds at most 4 shapes, got {len(colors)}")
    positions = rng.sample(list(GRID_POSITIONS), len(colors))
    cells: Cells = {p: None for p in GRID_POSITIONS}
    for position, color in zip(positions, colors):
        cells[position] = (color, rng.choice(list(shapes)))
    return cells


def objects(cells: Cells) -> list[tuple[str, str, str]]:
    """(position, colour, shape) of the non-empty cells, in reading order."""
    return [(p, c[0], c[1]) for p in GRID_POSITIONS if (c := cells[p]) is not None]


def grid_facts(cells: Cells, image_size: int, rng: random.Random):
    """Render the grid; return (image, facts, visual_key).

    Facts: every cell's colour and shape (None when empty) and the number of shapes.
    """
    image, boxes = render_grid(cells, image_size, rng)
    values: dict[str, dict] = {}
    for position in GRID_POSITIONS:
        content = cells[position]
        values[position] = {"color": content[0], "shape": content[1]} if content else {"color": None, "shape": None}
    values["shapes"] = {"count": len(objects(cells))}
    boxes["shapes"] = [0, 0, image_size, image_size]  # a count is read off the whole picture
    facts = {"layout": "2x2 grid; cells in reading order " + ", ".join(GRID_POSITIONS),
             "values": values, "boxes": boxes}
    key = json.dumps({p: cells[p] for p in GRID_POSITIONS}, sort_keys=True)
    return image, facts, key


def cells_sentence(cells: Cells, with_shape: bool = False) -> str:
    """"Cells: red, empty, blue, red." (with_shape: "Cells: red circle, empty, ...")."""
    words = []
    for position in GRID_POSITIONS:
        content = cells[position]
        if content is None:
            words.append("empty")
        else:
            words.append(f"{content[0]} {content[1]}" if with_shape else content[0])
    return "Cells: " + ", ".join(words) + "."


def count_sentence(label: str, n: int) -> str:
    """"Red: 2." -- a count read off the picture (a visual fact, not a computation)."""
    return f"{label.capitalize()}: {n}."
