"""How a benchmark row becomes a chat prompt, and how a reference solution becomes a target.

Every stage (SFT, RL, head identification, evaluation) builds prompts here, so the model always sees
the same format it was warm-started on.
"""

from __future__ import annotations

from typing import Any, Sequence

REASONING_INSTRUCTION = (
    "Reason step by step, one step per paragraph, and give the final answer as \\boxed{ANSWER}."
)
YES_NO_INSTRUCTION = "Please answer yes or no."
OPTION_LETTERS = "ABCDEFGHIJ"


def format_question(question: str, options: Sequence[str] | None = None) -> str:
    """The question text with its lettered options (multiple choice) appended."""
    text = question.strip()
    if options:
        lines = [f"({OPTION_LETTERS[i]}) {opt}" for i, opt in enumerate(options)]
        text += "\nOptions:\n" + "\n".join(lines)
    return text


def strip_yes_no_instruction(question: str) -> str:
    """The question without MME's own trailing "Please answer yes or no." (user_text adds ours).

    lmms-eval likewise removes it before appending its post-prompt, so the model sees it once.
    """
    text = question.strip()
    if text.lower().endswith(YES_NO_INSTRUCTION.lower()):
        text = text[: -len(YES_NO_INSTRUCTION)].rstrip()
    return text


def user_text(question: str, options: Sequence[str] | None = None, yes_no: bool = False) -> str:
    if yes_no:
        return f"{format_question(strip_yes_no_instruction(question), options)}\n{YES_NO_INSTRUCTION}"
    return f"{format_question(question, options)}\n{REASONING_INSTRUCTION}"


def build_messages(question: str, options: Sequence[str] | None = None, n_images: int = 1,
                   yes_no: bool = False, verbatim: bool = False) -> list[dict[str, Any]]:
    """Chat messages in the transformers multimodal format: the image(s) first, then the question.

    ``verbatim`` shows ``question`` as it is: for benchmarks whose official prompt already carries its
    options and answer instruction (MathVista's query, CharXiv's templates, ChartMimic's task).
    """
    content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
    text = question.strip() if verbatim else user_text(question, options, yes_no)
    content.append({"type": "text", "text": text})
    return [{"role": "user", "content": content}]


def format_target(solution: str, answer: str) -> str:
    """The reference completion: the solution's paragraphs, then the boxed answer as the last one."""
    paragraphs = [p.strip() for p in solution.split("\n\n") if p.strip()]
    paragraphs.append(f"The answer is \\boxed{{{answer}}}.")
    return "\n\n".join(paragraphs)
