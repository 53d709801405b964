"""PIL drawing for the synthetic suites: one big shape, 2x2 shape grids, bar charts and line charts.

Every picture is laid out on a 64-unit canvas and scaled to ``size`` pixels. The layout is coarse on
purpose and aligned to the tiny models' visual tokens: with 8-px patches and a 2x2 spatial merge, a
64-px image is a 4x4 grid of 16-px tokens, so a grid cell covers 2x2 tokens, a bar slot or a line
chart's x position one token column, and a chart value step one token row. Small random jitter
(position, size, shade) keeps two renderings of the same facts from being pixel-identical. Chart
backgrounds are shaded per token square (``chart_background``), so a token's content carries its column
and row.

Each ``render_*`` returns the image and the pixel box of every fact it drew, keyed like the facts, so
a figure can outline the region a misread fact came from.
"""

from __future__ import annotations

import random
from typing import Sequence

from PIL import Image, ImageDraw

CANVAS = 64  # layout units; scaled to the requested image size
BACKGROUND = (255, 255, 255)
GRID_LINE = (215, 215, 215)
AXIS = (90, 90, 90)

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 40),
    "blue": (30, 70, 225),
    "yellow": (235, 200, 0),
}
SHAPES = ("square", "circle", "triangle")

# The 2x2 grid, in reading order; each cell is (x0, y0, x1, y1) in layout units.
GRID_POSITIONS = ("top left", "top right", "bottom left", "bottom right")
_GRID_CELLS = {
    "top left": (0, 0, 32, 32),
    "top right": (32, 0, 64, 32),
    "bottom left": (0, 32, 32, 64),
    "bottom right": (32, 32, 64, 64),
}

Box = list[int]


def _scale(box: Sequence[float], size: int) -> Box:
    k = size / CANVAS
    return [int(round(v * k)) for v in box]


def _shade(rgb: tuple[int, int, int], rng: random.Random, spread: int = 18) -> tuple[int, int, int]:
    """The colour with a little per-channel noise, so colour is a category, not one exact pixel value."""
    return tuple(max(0, min(255, c + rng.randint(-spread, spread))) for c in rgb)  # type: ignore[return-value]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, fill: tuple[int, int, int], box: Box) -> None:
    x0, y0, x1, y1 = box
    if shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


# One big shape: 40-56 of the 64 layout units, so its colour fills most of the 16 visual tokens. At
# 20-34 units the tiny models did not learn the colour in 2,500 SFT steps; at 44-60 they did in 1,500
# (issue 14's probe).
BIG_SHAPE_SIDE = (40.0, 56.0)


def render_shape(color: str, shape: str, size: int, rng: random.Random) -> tuple[Image.Image, dict[str, Box]]:
    """One big shape on a white picture; its box is keyed "shape"."""
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    side = rng.uniform(*BIG_SHAPE_SIDE)
    x0, y0 = rng.uniform(2, CANVAS - 2 - side), rng.uniform(2, CANVAS - 2 - side)
    box = _scale((x0, y0, x0 + side, y0 + side), size)
    _draw_shape(draw, shape, _shade(COLORS[color], rng), box)
    return image, {"shape": box}


def render_grid(cells: dict[str, tuple[str, str] | None], size: int, rng: random.Random) -> tuple[Image.Image, dict[str, Box]]:
    """A 2x2 grid; ``cells[position]`` is (colour, shape) or None for an empty cell."""
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    boxes: dict[str, Box] = {}
    for position in GRID_POSITIONS:
        cx0, cy0, cx1, cy1 = _GRID_CELLS[position]
        boxes[position] = _scale((cx0, cy0, cx1, cy1), size)
        content = cells.get(position)
        if content is None:
            continue
        color, shape = content
        side = rng.uniform(20, 26)  # of a 32-unit cell: big, but never touching its neighbour
        x0 = cx0 + rng.uniform(2, 30 - side)
        y0 = cy0 + rng.uniform(2, 30 - side)
        _draw_shape(draw, shape, _shade(COLORS[color], rng), _scale((x0, y0, x0 + side, y0 + side), size))
    return image, boxes


# Chart backgrounds: each visual token's square (16 layout units) gets its own light grey, darker to
# the right and downwards, so a token's content says where it is. The Qwen2.5-VL tower has no absolute
# position embedding, and "leftmost bar" or "the value at point 3" needs the position: without this cue
# its tiny model stayed at chance on both chart suites even after 8,000 SFT steps
# (worklog/curriculum_feedback.md, round 4).
CHART_TOP_LEFT = 250         # grey of the top-left token square
CHART_SHADE_STEP = (14, 6)  # grey drop per token column, per token row
BAR_UNIT = 14.5   # layout units per chart value; values 1..4 fill the canvas height
BAR_BASE = 62.0


def chart_background(col: int, row: int) -> tuple[int, int, int]:
    """The background grey of the token square in column ``col`` and row ``row`` (0..3 each)."""
    g = CHART_TOP_LEFT - CHART_SHADE_STEP[0] * col - CHART_SHADE_STEP[1] * row
    return (g, g, g)


def _chart_canvas(size: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """An empty chart: the shaded token squares, the value grid lines and the x axis."""
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    step = CANVAS // 4
    for col in range(4):
        for row in range(4):
            box = (step * col, step * row, step * (col + 1), step * (row + 1))
            draw.rectangle(_scale(box, size), fill=chart_background(col, row))
    for v in range(1, 5):
        y = BAR_BASE - v * BAR_UNIT
        draw.line(_scale((0, y, CANVAS, y), size), fill=GRID_LINE, width=1)
    draw.line(_scale((0, BAR_BASE, CANVAS, BAR_BASE), size), fill=AXIS, width=1)
    return image, draw


def render_bars(bars: Sequence[tuple[int, str, int]], size: int, rng: random.Random,
                slots: int = 4) -> tuple[Image.Image, dict[str, Box]]:
    """A bar chart; ``bars`` holds (slot 0..slots-1, colour, value 1..4). Boxes are keyed "<colour> bar".

    The canvas width is split into ``slots`` equal slots; a bar fills 55-75 % of its slot's width
    (two slots: a bar two tokens wide).
    """
    image, draw = _chart_canvas(size)
    boxes: dict[str, Box] = {}
    slot_width = CANVAS / slots
    for slot, color, value in bars:
        width = slot_width * rng.uniform(0.55, 0.75)
        x0 = slot * slot_width + (slot_width - width) / 2 + rng.uniform(-1, 1)
        box = _scale((x0, BAR_BASE - value * BAR_UNIT, x0 + width, BAR_BASE), size)
        draw.rectangle(box, fill=_shade(COLORS[color], rng))
        boxes[f"{color} bar"] = box
    return image, boxes


def render_lines(lines: dict[str, Sequence[int]], size: int, rng: random.Random) -> tuple[Image.Image, dict[str, Box]]:
    """A line chart; ``lines[colour]`` holds the values (1..4) at points 1..4, one per token column.

    Boxes are keyed "<colour> at point <x>": the marker of that value.
    """
    image, draw = _chart_canvas(size)
    boxes: dict[str, Box] = {}
    width = max(1, round(2.5 * size / CANVAS))
    # Each line sits slightly left or right of the column centre, so equal values stay both visible.
    offsets = [2.0 * (2 * k - (len(lines) - 1)) / max(1, len(lines) - 1) for k in range(len(lines))]
    for (color, values), dx in zip(lines.items(), offsets):
        fill = _shade(COLORS[color], rng)
        points = [(8 + 16 * i + dx, BAR_BASE - v * BAR_UNIT) for i, v in enumerate(values)]
        draw.line([tuple(_scale(p, size)) for p in points], fill=fill, width=width)
        for i, (x, y) in enumerate(points):
            r = 3.5
            box = _scale((x - r, y - r, x + r, y + r), size)
            draw.ellipse(box, fill=fill)
            boxes[f"{color} at point {i + 1}"] = box
    return image, boxes
