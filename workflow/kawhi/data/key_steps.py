"""Key steps of a problem, for Step-GRPO's StepRAR (R1-VL, jingyi0000/R1-VL).

A problem's key steps are groups of alternative strings (R1-VL's ``{"Steps": [...]}``, a group matched
when any alternative occurs in a response). They live in a dataset column as JSON text:

- the synthetic suites write theirs from their reference solutions (:func:`key_steps_from_solution`:
  each solution paragraph is one key step, as the suites' fixed grammar states one fact per paragraph);
- hub data gets them from the configured judge with R1-VL's own two-stage recipe
  (``prompts/extract_key_steps.py``: a structured solution, then its key elements), through
  :func:`prepare_key_steps` (the ``kawhi key-steps`` command, rule ``key_steps``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

KeySteps = list[list[str]]  # groups of alternatives
KEY_STEPS_COLUMN = "key_steps"


def normalise_key_steps(value: Any) -> KeySteps:
    """A column value as groups of alternatives: JSON text, a list of strings, or a list of lists."""
    if value is None:
        return []
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    if isinstance(value, dict):  # R1-VL's own {"Steps": [...]} form
        value = value.get("Steps", [])
    groups = []
    for group in value:
        alternatives = [group] if isinstance(group, str) else list(group)
        alternatives = [str(a).strip() for a in alternatives if str(a).strip()]
        if alternatives:
            groups.append(alternatives)
    return groups


def key_steps_from_solution(solution: str, delimiter: str = "\n\n") -> KeySteps:
    """The synthetic suites' key steps: each paragraph of the reference solution (trailing period dropped)."""
    return [[p.strip().rstrip(".").strip()] for p in solution.split(delimiter) if p.strip().rstrip(".").strip()]


# R1-VL's extraction prompt (prompts/extract_key_steps.py), its "{reasoning_process}" filled with a solution
EXTRACTION_PROMPT = (
    "Given a reasoning process with structured reasoning steps (### headers), extract the key elements from each "
    "step.\n\n- For ### Image Description: Extract at most three key elements such as named entities (objects, "
    "labels) and numerical values. Each element should be unique.\n- For ### Rationales: Extract the core concepts "
    "needed to solve the problem, such as mathematical properties or definitions. Ensure each concept appears only "
    "once.\n- For ### Step X: Extract essential variables, equations, and relationships that contribute to the "
    "final solution. Avoid repeating previously extracted elements.\n- Ignore ### Let's think step by step and ### "
    "The final answer is.\n\nRetain only essential terms, numbers, and equations exactly as they appear in the "
    "text. If a key element is a phrase (not a number or equation), ensure it contains at most three words. **Do "
    "not extract the same key element more than once across different steps.** \n\nFormat your response as "
    "follows:\n\"Key Elements:\\nImage Description: [\"key1\", \"key2\", ...]; Rationales: [\"key1\", \"key2\", "
    "...]; Step 1: [\"key1\", \"key2\", ...], Step 2: [\"key1\", \"key2\", ...]; ...\".\n{reasoning_process}")

# hub data without a worked solution (Geo3K has question and answer only): the judge writes one first,
# in R1-VL's structured format, ending in the known answer
SOLUTION_PROMPT = (
    "Solve the problem step by step. Use these headers: ### Image Description:, ### Rationales:, "
    "### Let's think step by step., ### Step 1:, ### Step 2:, ... and end with ### The final answer is: "
    "followed by the answer. The correct final answer is {answer}.\n\nProblem: {question}")


def parse_key_elements(reply: str) -> KeySteps:
    """The Step parts of a 'Key Elements:' reply (R1-VL keys the Steps; description and rationales are
    ignored by its StepRAR), one group per element; [] when the reply has none."""
    groups: KeySteps = []
    for _, body in re.findall(r"Step\s*(\d+)\s*:\s*\[(.*?)\]", reply, flags=re.DOTALL):
        for element in re.findall(r"\"([^\"]+)\"|'([^']+)'", body):
            text = (element[0] or element[1]).strip()
            if text and [text] not in groups:
                groups.append([text])
    return groups


def extract_key_steps(complete: Callable[[str], str], question: str, answer: str,
                      solution: str | None = None) -> KeySteps:
    """Key steps of one problem from a judge (``complete``: prompt -> reply), R1-VL's two-stage recipe."""
    if not solution:
        solution = complete(SOLUTION_PROMPT.format(question=question, answer=answer))
    return parse_key_elements(complete(EXTRACTION_PROMPT.format(reasoning_process=solution)))



def prepare_key_steps(data: str | Path, out: str | Path, complete: Callable[[str], str] | None,
                      what: str = "train_data", column: str = KEY_STEPS_COLUMN) -> int:
    """Copy the prepared parquet ``data`` to ``out`` with a key-steps column; return the rows written.

    Rows that already carry key steps (or a ``solution`` the judge can read) keep them; without a judge
    (``complete`` None) and rows still to extract, it stops naming what is missing, before any work.
    """
    import datasets

    from kawhi.atomic import atomic_path

    ds = datasets.Dataset.from_parquet(str(data))
    for needed in ("question", "answer"):
        if needed not in ds.column_names:
            raise ValueError(f"{data}: missing column '{needed}' (has {ds.column_names})")
    if column in ds.column_names and all(normalise_key_steps(v) for v in ds[column]):
        todo = 0
    else:
        todo = len(ds)
    if todo and complete is None:
        raise ValueError(
            f"Step-GRPO needs key steps for {what} ({data}): its rows have no '{column}' column, and no judge "
            f"model is configured to extract them. Set eval.judge (kind, model, base_url) in the config, or add a "
            f"'{column}' column (JSON list of key steps) to the data, or drop step-grpo from grid.baselines.")
    solutions = ds["solution"] if "solution" in ds.column_names else [None] * len(ds)
    values = []
    for i, row in enumerate(ds.select_columns(["question", "answer"])):
        if not todo:
            values.append(ds[i][column])
            continue
        steps = extract_key_steps(complete, row["question"], str(row["answer"]), solutions[i])
        values.append(json.dumps(steps))
    if column in ds.column_names:
        ds = ds.remove_columns(column)
    ds = ds.add_column(column, values)
    with atomic_path(Path(out)) as tmp:
        ds.to_parquet(str(tmp))
    return len(ds)
