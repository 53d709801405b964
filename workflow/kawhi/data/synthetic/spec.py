"""What a synthetic suite is: its registry entry (SuiteSpec) and the items its sampler produces."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from PIL import Image

SUITE_KINDS = ("math", "chart", "mme")


@dataclass
class Item:
    """One question about one picture, before it becomes a parquet row.

    ``facts`` holds the ground truth read off the picture: ``values`` maps a fact key ("top left",
    "red bar", "blue at point 3", "red shapes") to its attributes, ``boxes`` maps it to its pixel box.
    ``visual_key`` is what decides the split: two items with equal visual keys show the same scene.
    """

    question: str
    answer: str
    options: list[str]
    solution: str
    category: str
    facts: dict[str, Any]
    image: Image.Image
    visual_key: str


@dataclass(frozen=True)
class QuestionType:
    """One question template of a suite; the sampler cycles through them so each gets n / T rows."""

    name: str
    n_options: int  # 0 for yes/no (MME-style); chance is 1 / n_options otherwise


# ``sample(rng, question_type, image_size)`` -> the items of one picture (two for MME-style pairs).
Sampler = Callable[[random.Random, QuestionType, int], list[Item]]


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    kind: str  # "math" | "chart" | "mme"
    description: str
    question_types: tuple[QuestionType, ...]
    sample: Sampler = field(repr=False)

    @property
    def yes_no(self) -> bool:
        return self.kind == "mme"

    @property
    def chance(self) -> float:
        """Accuracy (percent) of a uniform guess over each question's options (yes/no: 50).

        Question types are balanced by construction (row i uses type i mod T), and within a type the
        answer is drawn uniformly over its options wherever the option set is fixed, so this is also
        what always giving one answer scores, up to rounding over n.
        """
        rates = [50.0 if t.n_options == 0 else 100.0 / t.n_options for t in self.question_types]
        return sum(rates) / len(rates)


def number_options(rng: random.Random, answer: int, width: int = 4, low: int = 0) -> list[str]:
    """``width`` consecutive integers (never below ``low``) containing ``answer`` at a random place."""
    start = answer - rng.randrange(width)
    start = max(low, start)
    return [str(v) for v in range(start, start + width)]


def picture_key(image: Image.Image) -> str:
    """The visual key of a picture whose facts are few (one colour, one bar value): the pixels themselves.

    Such a suite cannot hold out facts (a test split without red shapes would test nothing), so it
    holds out pictures: no test picture is pixel-identical to a train picture.
    """
    return hashlib.sha256(image.tobytes()).hexdigest()
