"""MME: loading the benchmark and scoring it as lmms-eval and the official MME tool do.

Each image (``question_id``) carries two yes/no questions. Per category the score is
``acc + acc+``, both in percent: ``acc`` is per-question accuracy, ``acc+`` the share of images whose
questions are all right. Perception sums the 10 perception categories, cognition the 4 cognition
categories, and the total is their sum (at most 2800 on the full benchmark). A category absent from
the rows contributes nothing, exactly as in lmms-eval's aggregation.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

PERCEPTION_CATEGORIES = ("existence", "count", "position", "color", "posters", "celebrity", "scene",
                         "landmark", "artwork", "OCR")
COGNITION_CATEGORIES = ("commonsense_reasoning", "numerical_calculation", "text_translation",
                        "code_reasoning")
MME_COLUMNS = ("question_id", "image", "question", "answer", "category")
YES, NO, OTHER = "Yes", "No", "Other"


def parse_yes_no(text: str) -> str:
    """"Yes", "No" or "Other" from a generated answer, by lmms-eval's rule (from Otter).

    Lower-case, strip, drop full stops; an exact "yes"/"no" or a lone "y"/"n" decides; otherwise the
    first four characters are searched for "yes", then for "no".
    """
    answer = text.lower().strip().replace(".", "")
    if answer in ("yes", "no"):
        label = answer
    elif len(answer) == 1:
        label = {"y": "yes", "n": "no"}.get(answer, "other")
    elif "yes" in answer[:4]:
        label = "yes"
    elif "no" in answer[:4]:
        label = "no"
    else:
        label = "other"
    return label.capitalize()


def normalise_answer(answer: str, where: str = "") -> str:
    """A reference answer as "Yes"/"No"; anything else is a data error, named with its row."""
    label = str(answer).lower().strip().replace(".", "")
    if label not in ("yes", "no"):
        raise ValueError(f"MME answer must be Yes or No, got {answer!r}{where}")
    return label.capitalize()


def category_kind(category: str) -> str:
    if category in PERCEPTION_CATEGORIES:
        return "perception"
    if category in COGNITION_CATEGORIES:
        return "cognition"
    raise ValueError(f"unknown MME category {category!r}; expected one of "
                     f"{PERCEPTION_CATEGORIES + COGNITION_CATEGORIES}")


def mme_scores(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """MME scores of predicted rows.

    Each row needs ``question_id``, ``category``, ``answer`` (Yes/No) and ``prediction`` (a label or a
    raw generation; it is read with :func:`parse_yes_no`). Returns ``{"total", "perception",
    "cognition", "per_category": {category: {"acc", "acc_plus", "score", "n_questions",
    "n_images"}}}``, every number on MME's 0-100-per-part scale.
    """
    # category -> question_id -> list of per-question correctness
    results: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for i, row in enumerate(rows):
        for key in ("question_id", "category", "answer", "prediction"):
            if key not in row:
                raise KeyError(f"MME row {i} has no '{key}' (keys: {sorted(row)})")
        category = str(row["category"])
        category_kind(category)
        gold = normalise_answer(row["answer"], f" (row {i}, question_id {row['question_id']!r})")
        pred = parse_yes_no(str(row["prediction"]))
        results[category][str(row["question_id"])].append(pred == gold)

    per_category: dict[str, dict[str, float]] = {}
    for category in sorted(results):
        images = results[category]
        odd = [qid for qid, answers in images.items() if len(answers) != 2]
        if odd:
            # lmms-eval asserts two questions per image; a --limit can cut a pair, so warn instead.
            log.warning("MME category %s: %d image(s) without exactly two questions, e.g. %s",
                        category, len(odd), odd[0])
        n_questions = sum(len(answers) for answers in images.values())
        acc = 100.0 * sum(sum(answers) for answers in images.values()) / n_questions
        acc_plus = 100.0 * sum(all(answers) for answers in images.values()) / len(images)
        per_category[category] = {"acc": acc, "acc_plus": acc_plus, "score": acc + acc_plus,
                                  "n_questions": n_questions, "n_images": len(images)}

    perception = sum(v["score"] for c, v in per_category.items() if category_kind(c) == "perception")
    cognition = sum(v["score"] for c, v in per_category.items() if category_kind(c) == "cognition")
    return {"total": perception + cognition, "perception": perception, "cognition": cognition,
            "per_category": per_category}


def load_mme(path_or_hub_id: str | Path, split: str = "test", limit: int | None = None):
    """MME (or the synthetic MME-style suite) as a ``datasets.Dataset`` with the hub's columns.

    ``path_or_hub_id`` is a local ``.parquet`` file, a directory of parquet files, or a hub id such as
    ``lmms-lab/MME`` (read through the local cache; nothing is fetched when ``HF_HUB_OFFLINE=1``).
    ``limit`` keeps about the first ``limit`` questions, rounded up to whole images (both questions of
    an image are kept together, so acc+ stays defined).
    """
    import datasets

    source = Path(path_or_hub_id)
    if source.suffix == ".parquet" and source.is_file():
        ds = datasets.load_dataset("parquet", data_files=str(source), split="train")
    elif source.is_dir() and any(source.rglob("*.parquet")):
        files = sorted(str(p) for p in source.rglob("*.parquet") if split in p.name or split in p.parent.name)
        files = files or sorted(str(p) for p in source.rglob("*.parquet"))
        ds = datasets.load_dataset("parquet", data_files=files, split="train")
    elif source.exists():
        raise ValueError(f"{source}: not a parquet file or a directory holding parquet files")
    else:
        ds = datasets.load_dataset(str(path_or_hub_id), split=split)

    missing = [c for c in MME_COLUMNS if c not in ds.column_names]
    if missing:
        raise ValueError(f"{path_or_hub_id}: MME columns {missing} missing (has {ds.column_names})")
    if not isinstance(ds.features["image"], datasets.Image):
        ds = ds.cast_column("image", datasets.Image())
    for i, (answer, category) in enumerate(zip(ds["answer"], ds["category"])):
        where = f" in {path_or_hub_id}, row {i}"
        normalise_answer(answer, where)
        try:
            category_kind(category)
        except ValueError as err:
            raise ValueError(f"{err}{where}") from None
    if limit is not None:
        ds = _first_questions_whole_images(ds, limit)
    return ds


def _first_questions_whole_images(ds, limit: int):
    """All rows of the first images (by first appearance) until they hold at least ``limit`` rows."""
    question_ids = ds["question_id"]
    rows_per_image: dict[str, int] = defaultdict(int)
    for qid in question_ids:
        rows_per_image[qid] += 1
    keep: set[str] = set()
    n_rows = 0
    for qid in dict.fromkeys(question_ids):
        if n_rows >= limit:
            break
        keep.add(qid)
        n_rows += rows_per_image[qid]
    return ds.select([i for i, qid in enumerate(question_ids) if qid in keep])
