"""Sample a suite's rows and write them to parquet with `datasets` (the Image feature kept).

Determinism: the sampler's RNG is derived from (suite, split, seed) only, PNG encoding and the
parquet writer are deterministic, so the same arguments give the same bytes.

Disjoint splits: a picture belongs to the split that a hash of its visual facts names (a quarter of
all possible scenes are test scenes), and the sampler redraws until it hits its own split. No scene
of the test split can appear in the train split, whatever the seeds.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kawhi.atomic import atomic_path
from kawhi.data.key_steps import key_steps_from_solution
from kawhi.data.synthetic.registry import get_suite
from kawhi.data.synthetic.spec import Item

SPLITS = ("train", "test")
TEST_SHARE = 4          # one scene in TEST_SHARE belongs to the test split
MAX_REDRAWS = 1000


def split_of(suite: str, visual_key: str) -> str:
    """The split a scene belongs to: fixed by its visual facts, independent of any seed."""
    digest = hashlib.sha256(f"{suite}\n{visual_key}".encode()).digest()
    return "test" if digest[0] % TEST_SHARE == 0 else "train"


def suite_rng(suite: str, split: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{suite}/{split}/{seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _row(suite: str, split: str, index: int, item: Item, sub: int, yes_no: bool) -> dict[str, Any]:
    row: dict[str, Any] = {}
    if yes_no:  # MME's own columns first, named as in lmms-lab/MME
        row["question_id"] = f"{item.category}/{index:05d}.png"
    row.update({
        "id": f"{suite}/{split}/{index:05d}" + (f"/{sub}" if yes_no else ""),
        "image": item.image,
        "question": item.question,
        "answer": item.answer,
        "category": item.category,
        "options": list(item.options),
        "solution": item.solution,
        # Step-GRPO's StepRAR matches responses against these (kawhi.data.key_steps)
        "key_steps": json.dumps(key_steps_from_solution(item.solution)),
        "facts": json.dumps(item.facts, sort_keys=True),
        "suite": suite,
    })
    return row


def build_rows(suite: str, split: str, n: int, seed: int, image_size: int = 64, progress: bool = False) -> list[dict[str, Any]]:
    """The rows of a suite split (PIL images in ``image``). ``n`` counts pictures: MME-style suites
    give two rows per picture, the others one."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    spec = get_suite(suite)
    rng = suite_rng(suite, split, seed)
    rows: list[dict[str, Any]] = []
    for index in tqdm(range(n), desc=f"{suite}/{split}", disable=not progress):
        qtype = spec.question_types[index % len(spec.question_types)]
        for _ in range(MAX_REDRAWS):
            items = spec.sample(rng, qtype, image_size)
            if split_of(suite, items[0].visual_key) == split:
                break
        else:
            raise RuntimeError(f"{suite}: no {split} scene for question type {qtype.name!r} in {MAX_REDRAWS} draws")
        rows += [_row(suite, split, index, item, sub, spec.yes_no) for sub, item in enumerate(items)]
    return rows


def features_for(yes_no: bool):
    from datasets import Features, Image, List, Value

    columns: dict[str, Any] = {}
    if yes_no:
        columns["question_id"] = Value("string")
    columns.update({
        "id": Value("string"), "image": Image(), "question": Value("string"), "answer": Value("string"),
        "category": Value("string"), "options": List(Value("string")), "solution": Value("string"),
        "key_steps": Value("string"), "facts": Value("string"), "suite": Value("string"),
    })
    return Features(columns)


def write_suite(suite: str, split: str, n: int, seed: int, out: str | Path, image_size: int = 64,
                progress: bool = False) -> Path:
    """Write ``n`` pictures' rows of ``suite``/``split`` to ``out`` (parquet), atomically; return ``out``."""
    from datasets import Dataset

    spec = get_suite(suite)
    rows = build_rows(suite, split, n, seed, image_size, progress=progress)
    features = features_for(spec.yes_no)
    columns = {name: [row[name] for row in rows] for name in features}
    dataset = Dataset.from_dict(columns, features=features)
    out = Path(out)
    with atomic_path(out) as tmp:
        dataset.to_parquet(str(tmp))
    return out


def suite_texts(n_per_suite: int = 40, seed: int = 0) -> list[str]:
    """Prompt and reference-target texts of every suite: a corpus to train a tiny tokenizer on."""
    from kawhi.data.prompts import format_target, user_text
    from kawhi.data.synthetic.registry import SUITES

    texts = []
    for name, spec in SUITES.items():
        for row in build_rows(name, "train", n_per_suite, seed, image_size=16):
            texts.append(user_text(row["question"], row["options"], yes_no=spec.yes_no))
            texts.append(format_target(row["solution"], row["answer"]))
            texts.append(row["answer"])
    return texts
