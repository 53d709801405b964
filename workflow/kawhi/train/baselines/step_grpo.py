"""StepGRPO (R1-VL, Zhang et al. 2025): step-wise rewards added to the accuracy reward.

Ported from jingyi0000/R1-VL ``src/r1-vl/src/open_r1/grpo.py``:

- StepRAR (``key_step_single``): a problem's key steps are groups of alternative strings; a group is
  matched when any alternative occurs (case-insensitive substring: R1-VL's soft matching) in the
  response's step text. The matched share times ``key_step_weight`` (R1-VL's 0.1) is added to the
  accuracy reward, which R1-VL does inside its accuracy function.
- StepRVR (``validity_reward``): 1 when the response is complete (every required part present) and in
  logical order (numbered steps in order, the final answer after the last step), else 0; a reward
  function of its own, weight ``validity_weight``.

``format`` says how a response is cut into steps and answer: ``r1vl`` reads R1-VL's own headers
exactly as its code does; ``paragraphs`` (default) reads this pipeline's prompt format (reasoning
paragraphs cut at ``kawhi.delimiter``, the \\boxed{} answer in the last paragraph), the same structure
with the names this pipeline's policies are asked to use.

Key steps come from a dataset column (``column``, default ``key_steps``): the synthetic suites derive
them from their solutions; hub data gets them from the configured judge with R1-VL's extraction prompt
(:mod:`kawhi.data.key_steps`, the ``kawhi key-steps`` command).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kawhi.data.answers import extract_boxed
from kawhi.data.key_steps import KeySteps, normalise_key_steps
from kawhi.train.rewards import AccuracyReward, completion_text

_R1VL_SECTIONS = ("### Image Description:", "### Rationales:", "### Step 1:", "### The final answer is:")


@dataclass(frozen=True)
class StepGRPOSettings:
    """``algorithms.<name>.step_grpo`` (schema ``step_grpo_settings``; defaults: R1-VL's grpo.py)."""

    key_step_weight: float = 0.1
    validity_weight: float = 1.0
    column: str = "key_steps"
    format: str = "paragraphs"

    def __post_init__(self) -> None:
        if self.format not in ("paragraphs", "r1vl"):
            raise ValueError(f"step_grpo.format must be 'paragraphs' or 'r1vl', got {self.format!r}")


# ---- responses: steps and validity --------------------------------------------------------------------

def response_steps(text: str, fmt: str, delimiter: str = "\n\n") -> str:
    """The step text StepRAR matches against (lower case)."""
    if fmt == "r1vl":
        return " ".join(re.findall(r"### Step \d+:\s*(.*?)(?=\n###|\Z)", text, re.DOTALL)).lower()
    paragraphs = [p for p in text.split(delimiter) if p.strip()]
    return " ".join(paragraphs).lower()


def step_match(text: str, key_steps: KeySteps, fmt: str = "paragraphs", delimiter: str = "\n\n") -> float:
    """StepRAR's matched share of key-step groups in ``text`` (0 when the problem has no key steps)."""
    if not key_steps:
        return 0.0
    steps = response_steps(text, fmt, delimiter)
    return sum(any(alt.lower() in steps for alt in group) for group in key_steps) / len(key_steps)


def is_valid(text: str, fmt: str = "paragraphs", delimiter: str = "\n\n") -> bool:
    """StepRVR: complete and logically ordered."""
    if fmt == "r1vl":
        if any(section not in text for section in _R1VL_SECTIONS):
            return False
        steps = list(re.finditer(r"### Step (\d+):", text))
        if not steps:
            return False
        final = re.search(r"### The final answer is:.*?$", text, re.DOTALL)
        if final is None or final.start() < steps[-1].end():
            return False
        numbers = [int(m.group(1)) for m in steps]
        return numbers == list(range(1, len(numbers) + 1))
    paragraphs = [p for p in text.split(delimiter) if p.strip()]
    if len(paragraphs) < 2 or not extract_boxed(text):
        return False  # complete: at least one reasoning step before the answer, and an answer
    return "\\boxed" in paragraphs[-1] and all("\\boxed" not in p for p in paragraphs[:-1])  # answer comes last


# ---- TRL reward functions ----------------------------------------------------------------------------

class StepAccuracyReward(AccuracyReward):
    """Accuracy + ``key_step_weight`` x StepRAR (R1-VL adds it inside its accuracy reward)."""

    __name__ = "accuracy"

    def __init__(self, settings: StepGRPOSettings, delimiter: str = "\n\n", strip_units: bool = True) -> None:
        super().__init__(strip_units=strip_units)
        self.settings = settings
        self.delimiter = delimiter

    def __call__(self, prompts: list, completions: list, answer: list | None = None, options: list | None = None,
                 **kwargs: Any) -> list[float]:
        accuracy = super().__call__(prompts, completions, answer=answer, options=options, **kwargs)
        column = self.settings.column
        if kwargs.get(column) is None:
            raise KeyError(f"Step-GRPO needs a '{column}' column in the training data (algorithms.*.step_grpo.column)")
        return [acc + self.settings.key_step_weight * step_match(completion_text(c), normalise_key_steps(k),
                                                                 self.settings.format, self.delimiter)
                for acc, c, k in zip(accuracy, completions, kwargs[column], strict=True)]


class StepValidityReward:
    """StepRVR: 1 for a complete, logically ordered response, else 0."""

    __name__ = "step_validity"

    def __init__(self, settings: StepGRPOSettings, delimiter: str = "\n\n") -> None:
        self.settings = settings
        self.delimiter = delimiter

    def __call__(self, prompts: list, completions: list, **kwargs: Any) -> list[float]:
        return [float(is_valid(completion_text(c), self.settings.format, self.delimiter)) for c in completions]


def step_reward_functions(settings: StepGRPOSettings, delimiter: str, strip_units: bool = True
                          ) -> tuple[list[Any], list[float]]:
    """(accuracy with StepRAR, StepRVR) and their weights: they replace the plain accuracy reward."""
    return ([StepAccuracyReward(settings, delimiter, strip_units), StepValidityReward(settings, delimiter)],
            [1.0, settings.validity_weight])

