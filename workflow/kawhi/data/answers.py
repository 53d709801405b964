"""Rule-based answer extraction and equivalence, shared by the RL rewards and the evaluation scorers.

One module decides what a response "answered" and whether that equals the reference, so a reward of 1
during training means the same thing as a correct sample at evaluation time.

- ``extract_boxed``: the content of the last ``\\boxed{...}`` (nested braces kept).
- ``extract_answer``: ``\\boxed{}``, then "the answer is ...", then an option letter (multiple choice),
  then the last number in the text.
- ``is_equivalent``: math-verify's parse + verify ("0.5" == "1/2", "\\boxed{3}" == "3"), with a
  normalised string comparison first so non-math answers ("yes", "red") work too.
- ``match_option``: multiple choice, where prediction and gold may each be a letter or the option text.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Sequence

from kawhi.data.prompts import OPTION_LETTERS

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_ANSWER_IS = re.compile(
    r"(?:final\s+answer|the\s+answer|answer)\s*(?:is|:|=)\s*:?\s*(.+?)(?:\n|$)", re.IGNORECASE
)
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*(?:\s*/\s*\d+)?")
_LETTER_ALONE = re.compile(r"^\(?\s*([A-Ja-j])\s*\)?[.:)]?$")
_LETTER_IN_TEXT = re.compile(r"(?:^|[\s(\[])\(?([A-J])\)(?=$|[\s.,:;])|(?:^|[\s(\[])([A-J])(?=$|[.,:;]?\s*$)")
_TEXT_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
# Sympy parsing behind math-verify is guarded by signal.alarm, which only the main thread may set.
_PARSE_TIMEOUT_S = 5
_OPTION = re.compile(r"([A-H])\.\s*(.*?)\s*(?=;\s*[A-H]\.|$)", re.DOTALL)


def extract_boxed(text: str | None) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces balanced; None if absent."""
    if not text:
        return None
    start = max(text.rfind(cmd + "{") for cmd in _BOX_COMMANDS)
    if start < 0:
        return None
    open_at = text.index("{", start)
    depth = 0
    for i in range(open_at, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1:i].strip()
    return None  # unbalanced: a truncated response has no answer


def _clean(answer: str) -> str:
    """Strip the wrapping that surrounds an answer in prose: dollars, trailing period, \\text{}."""
    answer = _TEXT_WRAPPERS.sub(r"\1", answer.strip())
    previous = None
    while answer != previous:  # "$1.2$." and "1.2.$" both lose the period and the dollars
        previous = answer
        answer = answer.strip().strip("$").strip().rstrip(".").rstrip()
    return answer


def _option_letter(answer: str, options: Sequence[str] | None) -> str | None:
    """The option letter ``answer`` names: "B", "(B)", "B." or the full text of option B; else None."""
    if not options:
        return None
    answer = _clean(answer)
    m = _LETTER_ALONE.match(answer)
    if m:
        letter = m.group(1).upper()
        return letter if OPTION_LETTERS.index(letter) < len(options) else None
    for i, opt in enumerate(options):
        if _normalise(answer) == _normalise(str(opt)):
            return OPTION_LETTERS[i]
    m = re.match(r"^\(?([A-J])\)\s+", answer) or re.match(r"^([A-J])[.:]\s+", answer)
    if m and OPTION_LETTERS.index(m.group(1)) < len(options):
        return m.group(1)
    return None


def extract_answer(text: str | None, options: Sequence[str] | None = None) -> str | None:
    """What ``text`` answers: boxed content, "the answer is X", an option letter, or the last number.

    With ``options`` (multiple choice) an answer that names an option, by letter or by its text, comes
    back as the option letter, so it can be compared to a letter gold directly.
    """
    if not text:
        return None
    candidate = extract_boxed(text)
    if candidate is None:
        matches = _ANSWER_IS.findall(text)
        if matches:
            candidate = matches[-1]
    if candidate is not None:
        candidate = _clean(candidate)
        letter = _option_letter(candidate, options)
        return letter if letter is not None else candidate
    if options:
        letter = _option_letter(text, options)
        if letter is not None:
            return letter
        hits = [m.group(1) or m.group(2) for m in _LETTER_IN_TEXT.finditer(text)]
        hits = [h for h in hits if OPTION_LETTERS.index(h) < len(options)]
        if hits:
            return hits[-1]
    numbers = _NUMBER.findall(text)
    if numbers:
        return numbers[-1].replace(" ", "")
    return None


def _normalise(text: str) -> str:
    """Case, whitespace, dollar signs and a trailing period do not change an answer."""
    text = _clean(str(text)).lower()
    return re.sub(r"\s+", " ", text).strip()


@lru_cache(maxsize=4096)
def _parse(text: str, strip_units: bool):
    from latex2sympy2_extended.latex2sympy2 import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    latex = LatexExtractionConfig(
        boxed_match_priority=0,
        normalization_config=NormalizationConfig(
            basic_latex=True, units=strip_units, malformed_operators=True, nits=True, boxed="all",
            equations=False,
        ),
    )
    # A bare answer ("1/2", "\frac{1}{2}") has no anchor math-verify looks for: box it.
    if "\\boxed" not in text and "$" not in text:
        text = f"\\boxed{{{text}}}"
    return tuple(parse(text, extraction_config=[latex, ExprExtractionConfig()],
                       parsing_timeout=_timeout()))


def _timeout() -> int | None:
    return _PARSE_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def is_equivalent(pred: str | None, gold: str | None, strip_units: bool = True) -> bool:
    """Whether ``pred`` states the same answer as ``gold``: equal text after normalising, or equal by
    math-verify ("0.5" == "1/2" == "\\frac{1}{2}", "\\boxed{3}" == "3"; units such as "\\text{cm}"
    stripped when ``strip_units``). ``None`` or empty never matches.
    """
    if pred is None or gold is None:
        return False
    pred, gold = str(pred).strip(), str(gold).strip()
    if not pred or not gold:
        return False
    boxed_pred, boxed_gold = extract_boxed(pred), extract_boxed(gold)
    if _normalise(boxed_pred or pred) == _normalise(boxed_gold or gold):
        return True
    from math_verify import verify

    try:
        gold_parsed = _parse(gold, strip_units)
        pred_parsed = _parse(pred, strip_units)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(list(gold_parsed), list(pred_parsed), timeout_seconds=_timeout()))
    except Exception:  # math-verify raises on pathological input; that is "not equivalent", not a crash
        return False


def match_option(pred: str | None, options: Sequence[str], gold: str) -> bool:
    """Multiple choice: whether ``pred`` picks the same option as ``gold``.

    Either may be a letter ("B", "(B)") or the option's text. A gold that is neither a valid letter nor
    one of the options raises ValueError (bad data must not score silently as wrong).
    """
    gold_letter = _option_letter(str(gold), options)
    if gold_letter is None:
        raise ValueError(f"gold answer {gold!r} is neither an option letter nor one of the options {list(options)!r}")
    if pred is None:
        return False
    pred_letter = _option_letter(str(pred), options)
    if pred_letter is None:
        pred_letter = extract_answer(str(pred), options)
        pred_letter = pred_letter if pred_letter and len(pred_letter) == 1 else None
    return pred_letter == gold_letter


def parse_options(option_text: str) -> list[str]:
    """WeMath's ``option`` column, "A. 3cm; B. 4cm; ...", as a list of option texts."""
    found = _OPTION.findall(str(option_text or ""))
    letters = [letter for letter, _ in found]
    return [text for _, text in found] if letters == list("ABCDEFGH"[:len(letters)]) else []
