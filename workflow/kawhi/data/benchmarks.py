"""The paper's benchmarks: where each one lives, and its preparation into a local parquet with the
project's common columns.

``prepare_benchmark(name, out)`` reads a benchmark from the hub (through the local cache; nothing is
fetched when ``HF_HUB_OFFLINE=1``) or from a local path (a parquet file, a directory of parquet files,
or for ChartMimic the release's folders of ``.pdf`` + ``.py`` pairs), maps every row to the common
columns

    id (str), image (datasets Image), question (the full text shown to the model), answer (str),
    options (list[str], [] when not multiple choice)

and keeps every original column under its hub name. Where a common column would replace an original
column of the same name with different content (MathVista's ``question``/``image``), the original is
kept as ``<name>_hub``; the image column used as the source is not duplicated. A row without an
image or an answer raises :class:`BadRowError` naming its id, or is skipped and counted
(``skip_bad_rows``).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from kawhi.data import charxiv_prompts
from kawhi.data.chartmimic_release import ChartMimicReleaseError, read_release
from kawhi.data.hub_layout import HubLayoutError, split_files
from kawhi.data.rows import (BadRowError, answer_problem, image_problem,  # BadRowError re-exported
                             without_image_decoding)

log = logging.getLogger(__name__)

COMMON_COLUMNS = ("id", "image", "question", "answer", "options")
# Benchmarks whose `question` is the official prompt with its options and answer instruction included:
# the model sees it verbatim (kawhi.data.prompts.build_messages(verbatim=True)).
OFFICIAL_PROMPT_BENCHMARKS = frozenset({"mathvista", "mathverse", "charxiv_descriptive", "charxiv_reasoning",
                                        "chartmimic"})


class BenchmarkError(RuntimeError):
    """A benchmark that cannot be read (unknown name, missing offline copy, wrong columns)."""





Mapper = Callable[[dict[str, Any], int], list[dict[str, Any]]]


@dataclasses.dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    source: str
    split: str
    to_common: Mapper
    image_column: str  # the original column the common image comes from (dropped if not "image")
    required: tuple[str, ...]  # original columns the mapping needs (checked up front)
    hub_config: str | None = None


# ---- per-benchmark mappings: one raw hub row -> one or more common rows ------------------------------

def _mathvista(row, i):
    return [{"id": str(row["pid"]), "image": row["decoded_image"], "question": row["query"],
             "answer": row["answer"], "options": _strings(row.get("choices"))}]


def _mathverse(row, i):
    question = row.get("query_cot") or row.get("query_wo") or row["question"]
    return [{"id": str(row["sample_index"]), "image": row["image"], "question": question,
             "answer": row["answer"], "options": []}]


def _mathvision(row, i):
    return [{"id": str(row["id"]), "image": row["decoded_image"], "question": row["question"],
             "answer": row["answer"], "options": _strings(row.get("options"))}]


def _wemath(row, i):
    from kawhi.data.answers import parse_options

    return [{"id": f"{row['ID']}_{row['key']}", "image": row["image_path"], "question": row["question"],
             "answer": row["answer"], "options": parse_options(row.get("option", ""))}]


def _chartqa(row, i):
    labels = _strings(row.get("label"))
    return [{"id": str(i), "image": row["image"], "question": row["query"],
             "answer": labels[0] if labels else None, "options": []}]


def _chartqapro(row, i):
    questions, answers = _strings(row["Question"]), _strings(row["Answer"])
    # Conversational rows: earlier turns (with their answers) are context; the last question is asked.
    turns = [f"Q: {q}\nA: {a}" for q, a in zip(questions[:-1], answers[:-1])]
    parts = [p for p in [str(row.get("Paragraph") or "").strip(), *turns] if p]
    question = "\n\n".join(parts + [questions[-1] if questions else ""])
    return [{"id": str(i), "image": row["image"], "question": question,
             "answer": answers[-1] if answers else None, "options": []}]


def _charxiv_descriptive(row, i):
    out = []
    base = str(row.get("figure_path") or i)
    for k in range(1, 5):
        qid = row[f"descriptive_q{k}"]
        if qid is None:
            continue
        text = charxiv_prompts.descriptive_question(qid, row.get("subplot_loc"), row.get("subplot_row"),
                                                    row.get("subplot_col"))
        out.append({"id": f"{base}#d{k}", "image": row["image"], "question": text,
                    "answer": row[f"descriptive_a{k}"], "options": [], "descriptive_q": text,
                    "descriptive_a": row[f"descriptive_a{k}"], "qid": int(qid)})
    return out


def _charxiv_reasoning(row, i):
    text = charxiv_prompts.reasoning_question(row["reasoning_q"], row["reasoning_a_type"], row["reasoning_a"])
    return [{"id": f"{row.get('figure_path') or i}#r", "image": row["image"], "question": text,
             "answer": row["reasoning_a"], "options": []}]


# chart2code/prompts/DirectAgent/gpt-4-vision-preview.json ("instruction"), formatted by
# chart2code/agents/direct_agent.py with the figure's width and height in inches.
CHARTMIMIC_DIRECT_INSTRUCTION = (
    "You are an expert Python developer who specializes in writing matplotlib code based on a given picture. "
    "I found a very nice picture in a STEM paper, but there is no corresponding source code available. "
    "I need your help to generate the Python code that can reproduce the picture based on the picture I provide.\n"
    "Note that it is necessary to use figsize=({width}, {height}) to set the image size to match the original size.\n"
    "Now, please give me the matplotlib code that reproduces the picture below."
)


def _chartmimic(row, i):
    question = CHARTMIMIC_DIRECT_INSTRUCTION.format(width=float(row["width"]), height=float(row["height"]))
    return [{"id": str(row["ExampleID"]), "image": row["InputFigure"], "question": question,
             "answer": row["GroundTruthFigureCode"], "options": []}]


def _mme(row, i):
    return [{"id": f"{row['question_id']}#{i}", "image": row["image"], "question": row["question"],
             "answer": row["answer"], "options": []}]


def _rl_train(row, i):
    """An RL training set in the geometry3k layout (hiyouga/geometry3k: images, problem, answer)."""
    images = row["images"]
    question = str(row["problem"]).replace("<image>", "").strip()
    return [{"id": str(row.get("id", i)), "image": images[0] if images else None, "question": question,
             "answer": row["answer"], "options": []}]


BENCHMARKS: dict[str, BenchmarkSpec] = {spec.name: spec for spec in (
    # not a benchmark: the paper profile's RL data (train_data.source), prepared the same way
    BenchmarkSpec("rl_train", "hiyouga/geometry3k", "train", _rl_train, "images",
                  ("images", "problem", "answer")),
    BenchmarkSpec("mathvista", "AI4Math/MathVista", "testmini", _mathvista, "decoded_image",
                  ("pid", "decoded_image", "query", "answer", "question_type", "answer_type")),
    BenchmarkSpec("mathverse", "AI4Math/MathVerse", "testmini", _mathverse, "image",
                  ("sample_index", "image", "question", "answer", "question_type", "problem_version"),
                  hub_config="testmini"),
    BenchmarkSpec("mathvision", "MathLLMs/MathVision", "test", _mathvision, "decoded_image",
                  ("id", "decoded_image", "question", "answer", "options")),
    BenchmarkSpec("wemath", "We-Math/We-Math", "testmini", _wemath, "image_path",
                  ("ID", "key", "image_path", "question", "option", "answer")),
    BenchmarkSpec("chartqa", "HuggingFaceM4/ChartQA", "test", _chartqa, "image",
                  ("image", "query", "label", "human_or_machine")),
    BenchmarkSpec("chartqapro", "ahmed-masry/ChartQAPro", "test", _chartqapro, "image",
                  ("image", "Question", "Answer", "Question Type", "Year")),
    BenchmarkSpec("charxiv_descriptive", "princeton-nlp/CharXiv", "validation", _charxiv_descriptive, "image",
                  ("image", "descriptive_q1", "descriptive_a1", "descriptive_q4", "descriptive_a4")),
    BenchmarkSpec("charxiv_reasoning", "princeton-nlp/CharXiv", "validation", _charxiv_reasoning, "image",
                  ("image", "reasoning_q", "reasoning_a_type", "reasoning_a")),
    BenchmarkSpec("chartmimic", "ChartMimic/ChartMimic", "direct_600", _chartmimic, "InputFigure",
                  ("ExampleID", "InputFigure", "width", "height", "GroundTruthFigureCode")),
    BenchmarkSpec("mme", "lmms-lab/MME", "test", _mme, "image",
                  ("question_id", "image", "question", "answer", "category")),
)}


def get_benchmark(name: str) -> BenchmarkSpec:
    if name not in BENCHMARKS:
        raise BenchmarkError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)} "
                             f"(synthetic suites are made by `kawhi make-data`)")
    return BENCHMARKS[name]


# ---- reading a source ------------------------------------------------------------------------------

def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if hasattr(value, "tolist"):
        value = value.tolist()
    return [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]


def offline_help(spec: BenchmarkSpec, source: str, split: str) -> str:
    config = f" (config {spec.hub_config})" if spec.hub_config else ""
    return (f"benchmark {spec.name!r}: cannot read dataset {source}{config}, split {split!r}, from the local "
            f"cache. Pre-download it where the network is reachable, e.g.\n"
            f"  huggingface-cli download --repo-type dataset {source} --local-dir data/{spec.name}\n"
            f"and pass --source data/{spec.name} (or set benchmark_sources.{spec.name}.source in the config); "
            f"or run `python -c \"import datasets; datasets.load_dataset('{source}'"
            f"{', ' + repr(spec.hub_config) if spec.hub_config else ''}, split='{split}')\"` once online to fill "
            f"the cache used with HF_HUB_OFFLINE=1.")


def load_source(spec: BenchmarkSpec, source: str, split: str):
    """The raw benchmark as a ``datasets.Dataset`` (hub columns), from a local path or the hub cache."""
    import datasets

    path = Path(source)
    if path.exists():
        if spec.name == "chartmimic" and path.is_dir():
            return load_chartmimic_dir(path, split)  # the release: figures as PDF + code, not parquet
        if path.is_file():
            return datasets.load_dataset("parquet", data_files=str(path), split="train")
        try:
            files = split_files(path, split, spec.hub_config, spec.name)
        except HubLayoutError as err:
            raise BenchmarkError(str(err)) from err
        return datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")
    try:
        if spec.name == "chartmimic":
            from huggingface_hub import snapshot_download

            return load_chartmimic_dir(Path(snapshot_download(source, repo_type="dataset")), split)
        return datasets.load_dataset(source, spec.hub_config, split=split) if spec.hub_config else \
            datasets.load_dataset(source, split=split)
    except Exception as err:  # offline without a cache, unknown split, gated dataset...
        raise BenchmarkError(f"{offline_help(spec, source, split)}\n(cause: {type(err).__name__}: {err})") from err


def load_chartmimic_dir(root: Path, task: str):
    """ChartMimic's release folder (kawhi.data.chartmimic_release) as a ``datasets.Dataset``."""
    import datasets

    try:
        rows = read_release(root, task)
    except ChartMimicReleaseError as err:
        raise BenchmarkError(str(err)) from err
    return datasets.Dataset.from_list(rows).cast_column("InputFigure", datasets.Image())


def _as_pil(value: Any):
    """A PIL image from what a hub image column holds (PIL, {"bytes", "path"} dict, raw bytes, path)."""
    from PIL import Image

    if value is None:
        return None
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        if value.get("bytes"):
            return Image.open(io.BytesIO(value["bytes"]))
        return Image.open(value["path"]) if value.get("path") else None
    if isinstance(value, (bytes, bytearray)):
        return Image.open(io.BytesIO(value))
    if isinstance(value, str) and os.path.exists(value):
        return Image.open(value)
    return None


# ---- preparation ----------------------------------------------------------------------------------

@dataclasses.dataclass
class PrepareReport:
    benchmark: str
    source: str
    split: str
    out: str
    n_rows: int
    n_skipped: int
    skipped_ids: list[str]


def iter_common_rows(spec: BenchmarkSpec, raw, skip_bad_rows: bool = False,
                     skipped: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every raw row mapped to common rows with its original columns; bad rows raise or are skipped."""
    missing = [c for c in spec.required if c not in raw.column_names]
    if missing:
        raise BenchmarkError(f"benchmark {spec.name!r}: source lacks column(s) {missing} "
                             f"(has {raw.column_names})")
    def refuse_or_skip(row_id: str, problem: str) -> None:
        if not skip_bad_rows:
            raise BadRowError(f"benchmark {spec.name!r}: row id {row_id!r} has {problem}; "
                              f"fix the source or set eval.skip_bad_rows: true to skip and count it")
        log.warning("%s: skipping row id %r (%s)", spec.name, row_id, problem)
        if skipped is not None:
            skipped.append(row_id)

    undecoded = None
    for i in range(len(raw)):
        try:  # datasets decodes the row's images here; a truncated one fails before any mapper sees it
            row = raw[i]
        except (OSError, SyntaxError, ValueError) as err:
            undecoded = undecoded if undecoded is not None else without_image_decoding(raw)
            refuse_or_skip(_raw_row_id(spec, undecoded[i], i),
                           f"undecodable image ({type(err).__name__}: {str(err)[:120]})")
            continue
        for common in spec.to_common(row, i):
            merged = _merge(spec, row, common)
            problem = image_problem(merged["image"]) or answer_problem(merged["answer"])
            if problem:
                refuse_or_skip(merged["id"], problem)
                continue
            yield merged


def _raw_row_id(spec: BenchmarkSpec, row: dict[str, Any], index: int) -> str:
    """The id the mapper would give a row whose images do not decode (its position when it cannot)."""
    try:
        return ", ".join(str(common["id"]) for common in spec.to_common(row, index))
    except Exception:  # the mapper needed the image itself
        return f"row {index}"


def _merge(spec: BenchmarkSpec, row: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    merged = {k: v for k, v in row.items() if k != spec.image_column or k == "image"}
    for key, value in common.items():
        if key in merged and key in COMMON_COLUMNS and key != "image" and merged[key] != value:
            merged[f"{key}_hub"] = merged[key]
        if key == "image" and "image" in row and spec.image_column != "image":
            merged["image_hub"] = row["image"]
        merged[key] = value
    try:
        merged["image"] = _as_pil(merged["image"])
    except (OSError, SyntaxError, ValueError):  # not an image at all: image_problem names why
        pass
    if answer_problem(merged["answer"]) is None:
        merged["answer"] = str(merged["answer"])
    merged["id"] = str(merged["id"])
    merged["official_prompt"] = spec.name in OFFICIAL_PROMPT_BENCHMARKS
    return merged


def prepare_benchmark(name: str, out: str | Path, source: str | None = None, split: str | None = None,
                      limit: int | None = None, skip_bad_rows: bool = False,
                      shuffle_seed: int | None = None) -> PrepareReport:
    """Write benchmark ``name`` as parquet at ``out`` (atomically); see the module docstring.

    ``shuffle_seed``: read the source in an order shuffled with this seed, so that ``limit`` keeps a
    seeded random subset (the paper's 20K ChartQA training rows) instead of the first rows.
    """
    import datasets

    from kawhi.atomic import atomic_path

    spec = get_benchmark(name)
    source, split = source or spec.source, split or spec.split
    raw = load_source(spec, source, split)
    if shuffle_seed is not None:
        raw = raw.shuffle(seed=shuffle_seed)
    skipped: list[str] = []
    rows = []
    for row in iter_common_rows(spec, raw, skip_bad_rows, skipped):
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise BenchmarkError(f"benchmark {name!r}: no usable rows in {source} (split {split!r})")
    ds = datasets.Dataset.from_list(rows)
    if not isinstance(ds.features["image"], datasets.Image):
        ds = ds.cast_column("image", datasets.Image())
    with atomic_path(out) as tmp:
        ds.to_parquet(str(tmp))
    return PrepareReport(benchmark=name, source=source, split=split, out=str(out), n_rows=len(rows),
                         n_skipped=len(skipped), skipped_ids=skipped)
