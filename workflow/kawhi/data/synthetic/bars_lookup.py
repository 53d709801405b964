"""bars_lookup (chart-style): a bar chart of 3-4 coloured bars with values 1..4 on grid lines.

Questions, easy to hard: name the colour of the leftmost bar (a colour read, no height), name the
tallest bar (arg-max; it stands at least two steps above every other bar), read one bar (lookup), and
the difference of two bars. Answers are uniform over the four options of each type. Chance 25%.
"""

from __future__ import annotations

import json
import random

from kawhi.data.render import render_bars
from kawhi.data.synthetic.spec import Item, QuestionType, SuiteSpec

COLORS = ("red", "green", "blue", "yellow")
QUESTION_TYPES = (QuestionType("leftmost", 4), QuestionType("argmax", 4), QuestionType("lookup", 4),
                  QuestionType("difference", 4))


def _chart(rng: random.Random, fixed: dict[str, int]) -> list[tuple[int, str, int]]:
    """3-4 bars in random slots and colours, with the values in ``fixed`` forced."""
    n = rng.randint(max(3, len(fixed)), 4)
    others = [c for c in COLORS if c not in fixed]
    colors = list(fixed) + rng.sample(others, n - len(fixed))
    rng.shuffle(colors)
    slots = sorted(rng.sample(range(4), n))
    return [(s, c, fixed[c] if c in fixed else rng.randint(1, 4)) for s, c in zip(slots, colors)]


def _bars_sentence(bars: list[tuple[int, str, int]], only: tuple[str, ...] = ()) -> str:
    """"Bars: red 3, blue 1." -- the bars left to right, or just those named in ``only`` in that order."""
    value = {c: v for _, c, v in bars}
    names = only or tuple(c for _, c, _ in bars)
    return "Bars: " + ", ".join(f"{c} {value[c]}" for c in names) + "."


def sample(rng: random.Random, qtype: QuestionType, image_size: int) -> list[Item]:
    if qtype.name == "lookup":
        color, v = rng.choice(COLORS), rng.randint(1, 4)
        bars = _chart(rng, {color: v})
        question = f"What is the value of the {color} bar?"
        answer, options, steps = str(v), ["1", "2", "3", "4"], [_bars_sentence(bars, (color,))]
    elif qtype.name == "leftmost":
        color = rng.choice(COLORS)
        bars = _chart(rng, {color: rng.randint(1, 4)})
        first = min(s for s, _, _ in bars)
        # Swap colours so that the asked colour stands in the leftmost occupied slot.
        other = next(c for s, c, _ in bars if s == first)
        swap = {color: other, other: color}
        bars = sorted((s, swap.get(c, c), v) for s, c, v in bars)
        question = "What colour is the leftmost bar?"
        answer, options = color, list(COLORS)
        steps = [_bars_sentence(bars), f"Leftmost: {color}."]
    elif qtype.name == "argmax":
        # A clear winner: the tallest bar is two or more steps above the rest (coarse heights only).
        color, top = rng.choice(COLORS), rng.randint(3, 4)
        bars = _chart(rng, {color: top})
        bars = [(s, c, v if c == color else rng.randint(1, top - 2)) for s, c, v in bars]
        question = "Which bar is the tallest?"
        answer, options = color, list(COLORS)
        steps = [_bars_sentence(bars), f"Tallest: {color}."]
    elif qtype.name == "difference":
        a, b = rng.sample(COLORS, 2)
        d = rng.randint(0, 3)
        vb = rng.randint(1, 4 - d)
        bars = _chart(rng, {a: vb + d, b: vb})
        question = f"How much taller is the {a} bar than the {b} bar?"
        answer, options = str(d), ["0", "1", "2", "3"]
        steps = [_bars_sentence(bars, (a, b)), f"{vb + d} - {vb} = {d}."]
    else:
        raise ValueError(f"bars_lookup has no question type {qtype.name!r}")
    image, boxes = render_bars(bars, image_size, rng)
    facts = {"layout": "bar chart, 4 slots left to right, values 1..4",
             "values": {f"{c} bar": {"value": v, "slot": s} for s, c, v in bars}, "boxes": boxes}
    key = json.dumps(sorted(bars))
    return [Item(question, answer, options, "\n\n".join(steps), qtype.name, facts, image, key)]


SPEC = SuiteSpec(
    name="bars_lookup",
    kind="chart",
    description="Bar chart of 3-4 coloured bars (values 1..4): colour of the leftmost bar, tallest bar, "
                "value lookup, difference of two bars (4 options).",
    question_types=QUESTION_TYPES,
    sample=sample,
)
