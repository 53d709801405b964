"""MathVision (MATH-V): the official rule-based evaluator, ported from mathllm/MATH-V.

``evaluation/evaluate.py`` (``evaluate``): the model answer is cut out of the response (an option letter
at the start or end, the text after "the answer is" and its variants, or the last ``\\boxed{}``), then
``evaluation/utils.py``: ``find_math_answer`` normalises it (lower case, LaTeX wrappers, units, degree
signs, ``=``/``\\approx`` prefixes, ``_strip_string``), and ``is_equal`` accepts it when it equals the gold
answer, or the gold option's text for multiple choice, as strings, as tuples, or as numbers rounded to
two decimals after ``latex2sympy`` (so 0.33 is right for 1/3). Accuracy overall and per ``level``.

One difference: the official ``is_equal`` evaluates ``str(latex2sympy(x))`` with Python's ``eval`` and
``math``'s names; here the parsed sympy expression is evaluated numerically (``latex2sympy2_extended``,
the parser math-verify uses, instead of the original ``latex2sympy2``), which never runs model text as
code. With a judge configured (the paper's protocol) the judge extracts and grades instead.
"""

from __future__ import annotations

import re
from typing import Any

from kawhi.eval.scorers.base import Scorer, as_list, require

_ANSWER_FLAGS = ("the final answer is", "the answer is", "the correct answer is", "the answer should be")
_LETTER_SPANS = ("(a)", "(b)", "(c)", "(d)", "(e)", "{a}", "{b}", "{c}", "{d}", "{e}")


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def model_answer(response: str) -> str:
    """The answer ``evaluate`` cuts out of ``response`` (before ``find_math_answer``)."""
    answer = response.strip()
    for c in "ABCDE":
        if (answer.endswith(f" {c}.") or answer.endswith(f" ({c}).") or answer.startswith(f"{c}\n")
                or answer.startswith(f"({c})\n") or answer.startswith(f"({c}) {c}\n")):
            answer = c
    if _is_number(answer.split("is ")[-1].rstrip(".")):
        answer = answer.split("is ")[-1].rstrip(".")
    if "oxed{" not in answer:
        for flag in _ANSWER_FLAGS:
            for variant in (flag, flag.replace("the", "The")):
                raw = answer
                answer = answer.split(variant)[-1].strip()
                if variant in raw:
                    answer = answer.split("\n")[0].split(". ")[0]
    elif answer.count("oxed{") > 1:
        answer = "\\boxed{" + answer.split("oxed{")[-1]
    answer = find_math_answer(answer)
    for span in _LETTER_SPANS:
        answer = answer.replace(span, span[1])
    return answer.rstrip(".").lstrip(":").strip()


def find_math_answer(s: str) -> str:
    """``utils.find_math_answer``: the last ``\\boxed{}`` content (or the text), normalised."""
    s = s.lower().replace("{}", "")
    found = re.findall(r"oxed{(.*)}", s, flags=re.S)
    ans = found[-1] if found else s
    if ans.find("}") != -1 and (ans.find("{") == -1 or ans.find("}") < ans.find("{")):
        ans = ans.split("}")[0]
    ans = ans.split("=")[-1].split("\\approx")[-1]
    for old, new in ((" ", ""), ("\\,", ""), ("∞", "\\infty"), ("+\\infty", "\\infty"), ("\\\\", "\\"),
                     ("\n", ""), ("\\text", ""), ("\\mbox", ""), ("bmatrix", "pmatrix"), ("\\left", ""),
                     ("\\right", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("{m}^3", ""), ("m^3", ""),
                     ("{units}", ""), ("units", ""), ("{km}", ""), ("km", "")):
        ans = ans.replace(old, new)
    return _strip_string(ans)


def _strip_string(string: str) -> str:
    """``utils._strip_string`` (the MATH benchmark's answer normaliser)."""
    for old, new in (("\n", ""), ("\\!", ""), ("\\\\", "\\"), ("tfrac", "frac"), ("dfrac", "frac"),
                     ("\\left", ""), ("\\right", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("\\$", ""), ("$", "")):
        string = string.replace(old, new)
    string = string.split("\\text{ ")[0]  # _remove_right_units
    string = string.replace("\\%", "").replace("\\%", "")
    string = string.replace(" .", " 0.").replace("{.", "{0.")
    if not string:
        return string
    if string[0] == ".":
        string = "0" + string
    if len(string.split("=")) == 2:
        string = string.split("=")[-1]
    if len(string.split("\\approx")) == 2:
        string = string.split("\\approx")[-1]
    if "sqrt" in string:
        string = _fix_sqrt(string)
    string = string.replace(" ", "")
    if "sqrt" in string:
        string = _fix_fracs(string)
    if string == "0.5":
        string = "\\frac{1}{2}"
    return _fix_a_slash_b(string)


def _fix_sqrt(string: str) -> str:
    splits = string.split("\\sqrt")
    new = splits[0]
    for split in splits[1:]:
        new += "\\sqrt{" + split[0] + "}" + split[1:] if split and split[0] != "{" else "\\sqrt" + split
    return new


def _fix_fracs(string: str) -> str:
    substrs = string.split("\\frac")
    new = substrs[0]
    for substr in substrs[1:]:
        new += "\\frac"
        if substr and substr[0] == "{":
            new += substr
            continue
        if len(substr) < 2:
            return string
        a, b = substr[0], substr[1]
        if b != "{":
            new += "{" + a + "}{" + b + "}" + substr[2:]
        else:
            new += "{" + a + "}" + b + substr[2:]
    return new


def _fix_a_slash_b(string: str) -> str:
    if len(string.split("/")) != 2:
        return string
    a, b = string.split("/")
    try:
        a_int, b_int = int(a), int(b)
    except ValueError:
        return string
    return f"\\frac{{{a_int}}}{{{b_int}}}" if string == f"{a_int}/{b_int}" else string


def _numeric(latex: str) -> float:
    """The value of a LaTeX expression (raises when it has none)."""
    from latex2sympy2_extended import latex2sympy

    value = complex(latex2sympy(latex).evalf())
    if value.imag != 0:
        raise ValueError(f"not a real number: {latex!r}")
    return value.real


def _eval_tuple(s: str) -> str:
    """``utils.eval_tuple``: "(2*3, 5+2)" -> "(6.0,7.0)": each element evaluated, rounded to 2 decimals."""
    if len(s) < 2:
        return s
    parts = s[1:-1].split(",")
    if len(parts) <= 1 or (s[0], s[-1]) not in (("(", ")"), ("[", "]")):
        return s
    try:
        inner = ",".join(sub if "infty" in sub or sub in ("a", "-a") else str(round(_numeric(sub), 2))
                         for sub in parts)
    except Exception:  # an element that is no number: the official code keeps the string as it is
        return s
    return f"{s[0]}{inner}{s[-1]}"


def is_equal(asw: str, gt_asw: str) -> bool:
    """``utils.is_equal``: equal strings, equal tuples, or equal values to two decimals."""
    asw, gt_asw = asw.lower(), gt_asw.lower()
    if not asw.replace(" ", "") or not gt_asw.replace(" ", ""):
        return False
    if gt_asw.strip() == asw.strip():
        return True
    asw, gt_asw = _eval_tuple(asw), _eval_tuple(gt_asw)
    if gt_asw == asw:
        return True
    try:
        return round(_numeric(gt_asw), 2) == round(_numeric(asw), 2)
    except Exception:  # not numbers: the official evaluator says False
        return False


def gold_option_text(answer: str, options: list[str]) -> str:
    """The text of the gold option for multiple choice (``evaluate``'s ``gt_answer_value``), else ""."""
    if not options:
        return ""
    index = ord(answer) - ord("A") if len(answer) == 1 else -1
    if not 0 <= index < len(options):
        raise ValueError(f"MathVision gold answer {answer!r} names no option of {options!r}")
    return options[index]


class MathVisionScorer(Scorer):
    primary = "accuracy"
    group_column = "level"
    group_prefix = "accuracy_level"

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        require(row, "answer")
        options = [str(o) for o in as_list(row.get("options"))]
        gold = str(row["answer"])
        gold_value = gold_option_text(gold, options)
        if self.judge is not None:
            reference = f"{gold} ({gold_value})" if gold_value else gold
            return self.judge.judge_sample(str(row.get("question", "")), reference, response)
        pred = model_answer(response or "")
        return {"extracted": pred, "score": float(is_equal(gold, pred) or is_equal(gold_value, pred))}
