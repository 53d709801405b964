"""Reward functions for RL, in TRL's reward-function signature.

TRL calls each function as ``f(prompts=..., completions=..., completion_ids=..., **columns)``, where
``columns`` holds every dataset column (one value per completion) plus trainer extras. The accuracy
reward reads the dataset's ``answer`` column (and ``options`` for multiple choice) and scores with
:mod:`kawhi.data.answers`, the same rule the evaluation uses.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from kawhi.data.answers import extract_answer, extract_boxed, is_equivalent, match_option

RewardFunc = Callable[..., list[float]]


def completion_text(completion: Any) -> str:
    """The text of one completion: a plain string, or a conversational list of messages (TRL's chat form)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        parts = []
        for message in completion:
            content = message.get("content", "") if isinstance(message, dict) else message
            if isinstance(content, list):  # multimodal content blocks
                content = "".join(block.get("text", "") for block in content if isinstance(block, dict))
            parts.append(str(content))
        return "".join(parts)
    raise TypeError(f"unsupported completion type {type(completion).__name__}")


def _has_options(options: Any) -> bool:
    return options is not None and not isinstance(options, str) and len(options) > 0


def score_answer(text: str, answer: str, options: Sequence[str] | None = None, strip_units: bool = True) -> float:
    """1.0 if ``text`` answers ``answer`` (option letter for multiple choice, math-verify otherwise), else 0.0."""
    if _has_options(options):
        pred = extract_answer(text, list(options))
        return float(match_option(pred, list(options), str(answer)))
    return float(is_equivalent(extract_answer(text), str(answer), strip_units=strip_units))


class AccuracyReward:
    """Accuracy reward: 1 for a correct final answer, 0 otherwise.

    A callable class (not a closure) so TRL can pickle it and log it under ``rewards/accuracy/*``.
    Raises KeyError naming the column when the dataset has no ``answer`` column.
    """

    __name__ = "accuracy"

    def __init__(self, strip_units: bool = True) -> None:
        self.strip_units = strip_units

    def __call__(self, prompts: list, completions: list, answer: list | None = None,
                 options: list | None = None, **kwargs: Any) -> list[float]:
        if answer is None:
            raise KeyError("accuracy reward needs an 'answer' column in the training data")
        options = options if options is not None else [None] * len(completions)
        return [score_answer(completion_text(c), a, o, self.strip_units)
                for c, a, o in zip(completions, answer, options, strict=True)]


_PARAGRAPH_THEN_BOX = re.compile(r"\S")


class FormatReward:
    """Format reward: 1 when the response reasons in paragraphs (the KAWHI delimiter) and ends with \\boxed{}.

    Weight it with ``training.format_reward`` (0 turns it off); it is what the prompt instruction asks for.
    """

    __name__ = "format"

    def __init__(self, delimiter: str = "\n\n") -> None:
        self.delimiter = delimiter

    def __call__(self, prompts: list, completions: list, **kwargs: Any) -> list[float]:
        return [self.score(completion_text(c)) for c in completions]

    def score(self, text: str) -> float:
        boxed = extract_boxed(text)
        if boxed is None or not boxed:
            return 0.0
        # the boxed answer must sit in the last paragraph, after at least one reasoning paragraph
        paragraphs = [p for p in text.split(self.delimiter) if _PARAGRAPH_THEN_BOX.search(p)]
        return 1.0 if len(paragraphs) >= 2 and "\\boxed" in paragraphs[-1] else 0.5


def build_reward_functions(training: dict[str, Any], algorithm: dict[str, Any],
                           delimiter: str = "\n\n") -> tuple[list[RewardFunc], list[float]]:
    """Reward functions and weights for one run: accuracy, optional format, DAPO's soft overlong punishment."""
    funcs: list[RewardFunc] = [AccuracyReward(strip_units=training["strip_units"])]
    weights = [1.0]
    if algorithm.get("step_grpo") is not None:  # Step-GRPO: accuracy + StepRAR, and StepRVR (baselines.step_grpo)
        from kawhi.train.baselines.step_grpo import StepGRPOSettings, step_reward_functions

        funcs, weights = step_reward_functions(StepGRPOSettings(**algorithm["step_grpo"]), delimiter,
                                               training["strip_units"])
    format_weight = float(training["format_reward"])
    if format_weight > 0:
        funcs.append(FormatReward(delimiter))
        weights.append(format_weight)
    if algorithm["overlong_punishment"]:
        from trl.rewards import get_soft_overlong_punishment

        max_len = int(training["max_completion_length"])
        buffer = int(algorithm["overlong_buffer"])
        if not 0 < buffer < max_len:
            raise ValueError(f"algorithms.*.overlong_buffer={buffer} must lie in (0, training.max_completion_length="
                             f"{max_len})")
        funcs.append(get_soft_overlong_punishment(max_completion_len=max_len, soft_punish_cache=buffer))
        weights.append(1.0)
    return funcs, weights
