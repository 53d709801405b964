"""The project's lm-eval task definition: one generative multimodal task per benchmark parquet.

A benchmark (a prepared hub benchmark or a synthetic suite) is local parquet with the common columns
``id, image, question, answer, options`` next to its original hub columns. :class:`BenchmarkTask`
turns it into an lm-eval task dict (``task_config``): the parquet is read by lm-eval through
``datasets`` (``data_files``), the prompt is :func:`kawhi.data.prompts.build_messages` rendered with the
model's chat template by lm-eval's ``apply_chat_template``, and ``process_results`` calls the benchmark
scorer's ``score_sample``. Decoding is greedy by default; with ``num_samples`` = k > 1 lm-eval draws k
samples per row at ``temperature`` (its ``repeats``, kept whole by its ``take_first_k`` filter), and the
per-row score lm-eval averages is the mean over the k samples: pass@1. pass@k is computed from the
logged samples afterwards (:mod:`kawhi.eval.runner`).

lm-eval averages per-sample scores; the official aggregate metrics (MME acc+, WeMath composites, ...)
are computed afterwards by :mod:`kawhi.eval.rescore` from the logged samples, the same code that
``kawhi score`` runs.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kawhi.data.rows import BadRow, BadRowError, check_parquet  # one error type for bad rows, everywhere
from kawhi.data.rows import find_bad_rows as _find_bad_rows
from kawhi.data.prompts import build_messages

# The image placeholder of lm-eval's multimodal models: HFMultimodalLM.apply_chat_template splits the
# prompt at it and puts an {"type": "image"} entry where each one stood.
IMAGE_PLACEHOLDER = "<image>"
TASK_PREFIX = "kawhi_"
SPLIT = "test"
# Keys a samples line adds to the benchmark row; `kawhi score` drops them before re-scoring.
LOG_KEYS = ("prompt", "response", "extracted", "score", "scoring", "samples")


# ---- rows: images and JSON-able copies ----------------------------------------------------------------

def is_image_value(value: Any) -> bool:
    """A PIL image, a ``datasets`` undecoded image dict ({"bytes", "path"}), or a list of those."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return True
    if isinstance(value, dict) and "bytes" in value and set(value) <= {"bytes", "path"}:
        return True
    if isinstance(value, (list, tuple)) and value:
        return all(is_image_value(v) for v in value)
    return False


def row_without_images(row: dict[str, Any]) -> dict[str, Any]:
    """The row as JSON would give it back: image columns dropped, every value JSON round-tripped.

    Scoring always sees this form, in ``kawhi evaluate`` and in ``kawhi score`` alike, so both give the
    same numbers.
    """
    kept = {k: v for k, v in row.items() if not is_image_value(v)}
    return json.loads(json.dumps(kept, default=str))


def _to_pil(value: Any):
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):  # pandas-written parquet: the raw {"bytes", "path"} struct
        if value.get("bytes") is not None:
            return Image.open(io.BytesIO(value["bytes"]))
        if value.get("path"):
            return Image.open(value["path"])
    raise TypeError(f"not an image: {type(value).__name__}")


def row_images(row: dict[str, Any]) -> list:
    """The row's image(s) from the common ``image`` column, as RGB PIL images."""
    value = row.get("image")
    values = value if isinstance(value, (list, tuple)) else [value]
    return [_to_pil(v).convert("RGB") for v in values if v is not None]


def find_bad_rows(dataset) -> list[BadRow]:
    """Rows of a ``datasets.Dataset`` that lack an image or an answer, or whose image does not decode."""
    for column in ("image", "answer"):
        if column not in dataset.column_names:
            raise BadRowError(f"benchmark data has no '{column}' column (columns: {dataset.column_names})")
    return _find_bad_rows(dataset)


def load_benchmark(data_file: str | Path, decode_images: bool = True):
    """The benchmark parquet as lm-eval loads it (the same ``datasets`` call and split).

    ``decode_images=False`` leaves Image columns as {"bytes", "path"} dicts (cheap to read).
    """
    import datasets

    check_parquet(data_file, "benchmark data")  # a truncated or empty file is named, not a bare ArrowInvalid
    dataset = datasets.load_dataset("parquet", data_files={SPLIT: str(data_file)})[SPLIT]
    if not decode_images:
        for name, feature in dataset.features.items():
            if isinstance(feature, datasets.Image):
                dataset = dataset.cast_column(name, datasets.Image(decode=False))
    return dataset


# ---- the task ---------------------------------------------------------------------------------------

@dataclass
class BenchmarkTask:
    """One benchmark as an lm-eval generative multimodal task.

    ``scored`` collects every ``score_sample`` result by (row, response), so that the aggregation after
    lm-eval reuses them instead of scoring twice (ChartMimic executes code to score).
    """

    benchmark: str
    data_file: Path
    scorer: Any
    max_new_tokens: int
    skip_ids: frozenset[str] = frozenset()
    num_samples: int = 1        # k: completions drawn per row (lm-eval repeats)
    temperature: float = 0.0    # 0: greedy; k > 1 needs > 0

    def __post_init__(self) -> None:
        if int(self.num_samples) < 1:
            raise ValueError(f"eval.num_samples must be at least 1, got {self.num_samples}")
        if self.temperature < 0:
            raise ValueError(f"eval.temperature must be >= 0, got {self.temperature}")
        if self.num_samples > 1 and self.temperature == 0:
            raise ValueError(f"eval.num_samples = {self.num_samples} needs eval.temperature > 0: greedy "
                             f"decoding gives the same completion every time")
    scored: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return TASK_PREFIX + self.benchmark

    # lm-eval hooks ------------------------------------------------------------------------------------
    def process_docs(self, dataset):
        if not self.skip_ids:
            return dataset
        if "id" not in dataset.column_names:  # bad rows were named by position
            keep = [i for i in range(len(dataset)) if f"row {i}" not in self.skip_ids]
            return dataset.select(keep)
        return dataset.filter(lambda row_id: str(row_id) not in self.skip_ids, input_columns=["id"])

    def doc_to_image(self, doc: dict[str, Any]) -> list:
        return row_images(doc)

    def doc_to_text(self, doc: dict[str, Any]) -> str:
        return prompt_text(doc, n_images=len(row_images(doc)), yes_no=self.scorer.yes_no)

    def process_results(self, doc: dict[str, Any], results: list[str]) -> dict[str, float]:
        row = row_without_images(doc)
        scores = []
        for response in responses_of(results[0]):
            scored = self.scorer.score_sample(row, response)
            self.scored[sample_key(row, response)] = scored
            scores.append(float(scored["score"]))
        return {"score": sum(scores) / len(scores)}  # the row's pass@1: mean over its samples

    def task_config(self) -> dict[str, Any]:
        """The lm-eval task dict (what a task YAML would hold, with our functions as callables)."""
        return {
            "task": self.name,
            "dataset_path": "parquet",
            "dataset_kwargs": {"data_files": {SPLIT: str(self.data_file)}},
            "test_split": SPLIT,
            "output_type": "generate_until",
            "process_docs": self.process_docs,
            "doc_to_image": self.doc_to_image,
            "doc_to_text": self.doc_to_text,
            "doc_to_target": "answer",
            "process_results": self.process_results,
            # Stop only at end of turn ("until": [] gets the EOS added by lm-eval), never at
            # lm-eval's default "\n\n", which separates our reasoning paragraphs.
            "generation_kwargs": self.generation_kwargs(),
            "repeats": int(self.num_samples),
            # lm-eval's default filter keeps only the first of the repeats; keep all k.
            "filter_list": [{"name": "none", "filter": [{"function": "take_first_k", "k": int(self.num_samples)}]}],
            "num_fewshot": 0,
            "metric_list": [{"metric": "score", "aggregation": "mean", "higher_is_better": True}],
            "metadata": {"version": 1.0, "benchmark": self.benchmark},
        }


    def generation_kwargs(self) -> dict[str, Any]:
        """Greedy at temperature 0; else plain ancestral sampling (no top-k/top-p truncation, as RL
        rollouts sample), so pass@1 is the policy's own expected accuracy."""
        if self.temperature == 0:
            return {"until": [], "do_sample": False, "temperature": 0.0, "max_gen_toks": int(self.max_new_tokens)}
        return {"until": [], "do_sample": True, "temperature": float(self.temperature), "top_k": 0,
                "top_p": 1.0, "max_gen_toks": int(self.max_new_tokens)}


def responses_of(value: Any) -> list[str]:
    """The completions of one row as lm-eval hands them over: a list of k (take_first_k) or one string."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError(f"expected a completion or a list of completions, got {value!r:.200}")


def prompt_text(row: dict[str, Any], n_images: int, yes_no: bool) -> str:
    """:func:`build_messages` as lm-eval text: one ``<image>`` per image entry, then the question."""
    options = row.get("options") or None
    (message,) = build_messages(row["question"], options, n_images=n_images, yes_no=yes_no,
                                verbatim=bool(row.get("official_prompt")))
    parts = [IMAGE_PLACEHOLDER if item["type"] == "image" else item["text"] for item in message["content"]]
    return "".join(parts)


def sample_key(row: dict[str, Any], response: str) -> str:
    return json.dumps([row, response], sort_keys=True)
