"""SFT warm-start of a tiny model on the synthetic suites, through TRL's SFTTrainer.

A freshly built tiny model knows nothing: RL from it would see reward 0 on every rollout. A short
supervised pass on the suites' reference solutions teaches the answer format and some perception,
so RL starts above chance and below the ceiling. Examples are conversational prompt-completion
pairs: the prompt is ``prompts.build_messages`` (the format every later stage uses), the completion
the reference target, and the loss covers the completion only (TRL's ``completion_only_loss``).

Targets: ``prompts.format_target(solution, answer)`` -- reasoning paragraphs, then the boxed answer
-- or, for a ``guess_share`` of the multiple-choice examples, an ungrounded guess (``guess_target``:
"The answer is \\boxed{Y}." with Y drawn uniformly from the options). The mixture puts the warm
start in the regime where RLVR works on real models: the policy samples both behaviours, the grounded
one right far more often than chance, so pass@k stands well above pass@1 and RL has a behaviour to
select (docs/data.md, "The warm-start regime"). Yes/no (MME-style) rows are never guessed; their
target puts the bare "Yes"/"No" first and the solution's fact paragraphs after it: MME is scored from the first answer word (head identification reads the
first token), so the model must answer first, as the real Qwen-VL models do under MME's "Please
answer yes or no." instruction; the facts after it still teach perception.

After training, greedy generation on held-out test rows, graded by the suite's own ``is_correct``,
gives the accuracy per suite of the untrained and the warm-started model; both go into sft.json.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Sequence

from kawhi.atomic import atomic_path, write_json
from kawhi.data.prompts import build_messages, format_target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SFTSettings:
    """The ``sft`` config block (defaults equal the schema's), plus the seed."""

    max_steps: int = 2000
    learning_rate: float = 3e-3
    batch_size: int = 4
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    eval_limit: int = 100
    eval_batch_size: int = 32
    eval_untrained: bool = True
    suite_weights: dict[str, float] | None = None  # suite -> share multiplier of its train rows (default 1)
    first_suites: list[str] | None = None  # suites of the first phase (None: no first phase)
    first_steps: int = 0                   # steps of the first phase
    guess_share: float = 0.0               # share of multiple-choice examples with an ungrounded guess target
    seed: int = 0

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> "SFTSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in known})


# ---- rows -> examples ------------------------------------------------------------------------------

def load_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of one parquet file (images decoded to PIL), each tagged with its suite name."""
    from kawhi.data.rows import BadRowError, describe_bad_rows, find_bad_rows, read_parquet

    path = Path(path)
    dataset = read_parquet(path, "SFT data", keep_in_memory=True)  # missing/empty/truncated: named
    image_column = "image" if "image" in dataset.column_names else "images"
    if {"answer", image_column} <= set(dataset.column_names):
        bad = find_bad_rows(dataset, image_column)
        if bad:
            raise BadRowError(describe_bad_rows(path, bad, "fix or rebuild the SFT data"))
    rows = list(dataset)
    for i, row in enumerate(rows):
        missing = [c for c in ("question", "answer") if row.get(c) is None]
        if missing or (row.get("image") is None and not row.get("images")):
            raise ValueError(f"{path} row {i} (id {row.get('id')!r}) lacks {missing or ['image']}")
        row.setdefault("suite", path.parent.name)
        row["suite"] = row["suite"] or path.parent.name
    return rows


def row_images(row: dict[str, Any]) -> list[Any]:
    images = row.get("images") or [row["image"]]
    return [im.convert("RGB") if hasattr(im, "convert") else im for im in images]


def is_yes_no(row: dict[str, Any]) -> bool:
    """A yes/no (MME-style) row: the suite says so, else a yes/no answer without options."""
    try:
        from kawhi.data.synthetic import get_suite

        return get_suite(row["suite"]).yes_no
    except (ImportError, KeyError):
        return not row.get("options") and str(row["answer"]).strip().lower() in ("yes", "no")


def prompt_messages(row: dict[str, Any]) -> list[dict[str, Any]]:
    return build_messages(row["question"], list(row.get("options") or []) or None,
                          n_images=len(row_images(row)), yes_no=is_yes_no(row))


def target_text(row: dict[str, Any]) -> str:
    """The completion SFT teaches (see the module docstring for the yes/no case)."""
    answer = str(row["answer"]).strip()
    if is_yes_no(row):
        # Answer first (MME reads the first word), then the facts behind it: perceptual supervision
        # that a one-word target would not give.
        paragraphs = [p.strip() for p in (row.get("solution") or "").split("\n\n") if p.strip()]
        return "\n\n".join([answer] + paragraphs)
    return format_target(row.get("solution") or "", answer)


def guess_target(row: dict[str, Any], rng) -> str:
    """An ungrounded completion: no reading, no computation, a uniform guess among the options."""
    return format_target("", str(rng.choice(list(row["options"]))))


def stream_targets(stream: Sequence[dict[str, Any]], guess_share: float, seed: int = 0) -> list[str]:
    """The target of every example in the step stream: a seeded ``guess_share`` of the multiple-choice
    ones are guesses, drawn afresh each time a row comes round, so no picture is tied to one behaviour."""
    import random

    if not 0.0 <= guess_share < 1.0:
        raise ValueError(f"sft.guess_share must lie in [0, 1), got {guess_share}")
    rng = random.Random(f"guess/{seed}")
    targets = []
    for row in stream:
        guessed = bool(row.get("options")) and not is_yes_no(row) and rng.random() < guess_share
        targets.append(guess_target(row, rng) if guessed else target_text(row))
    return targets


def sft_example(row: dict[str, Any], target: str | None = None) -> dict[str, Any]:
    """A conversational prompt-completion example with its images, as TRL's VLM collator reads it.

    ``target`` replaces the reference completion (``target_text``), e.g. with a guess.
    """
    text = target_text(row) if target is None else target
    return {
        "prompt": prompt_messages(row),
        "completion": [{"role": "assistant", "content": [{"type": "text", "text": text}]}],
        "images": row_images(row),
    }


# ---- held-out accuracy -----------------------------------------------------------------------------

def generate_responses(model, processor, rows: Sequence[dict[str, Any]], max_new_tokens: int,
                       batch_size: int = 32) -> list[str]:
    """Greedy responses to ``rows`` in the shared prompt format (left-padded batches)."""
    import torch
    from tqdm import tqdm

    responses: list[str] = []
    model.eval()
    for start in tqdm(range(0, len(rows), batch_size), desc="generate", leave=False):
        batch = rows[start:start + batch_size]
        texts = [processor.apply_chat_template(prompt_messages(r), add_generation_prompt=True, tokenize=False)
                 for r in batch]
        inputs = processor(text=texts, images=[row_images(r) for r in batch], padding=True,
                           padding_side="left", return_tensors="pt").to(model.device)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        responses += processor.batch_decode(new_tokens, skip_special_tokens=True)
    return responses


def grade(row: dict[str, Any], response: str) -> bool:
    from kawhi.data.synthetic import is_correct

    return bool(is_correct(row, response))


def heldout_accuracy(model, processor, rows: Sequence[dict[str, Any]], max_new_tokens: int,
                     batch_size: int = 32) -> dict[str, dict[str, Any]]:
    """Per suite: accuracy (percent) of greedy generation, n, and two example responses."""
    responses = generate_responses(model, processor, rows, max_new_tokens, batch_size)
    by_suite: dict[str, list[bool]] = defaultdict(list)
    examples: dict[str, list[str]] = defaultdict(list)
    for row, response in zip(rows, responses):
        by_suite[row["suite"]].append(grade(row, response))
        if len(examples[row["suite"]]) < 2:
            examples[row["suite"]].append(response)
    return {suite: {"accuracy": 100.0 * sum(ok) / len(ok), "n": len(ok), "examples": examples[suite]}
            for suite, ok in by_suite.items()}


def chance_accuracy(suite: str) -> float | None:
    try:
        from kawhi.data.synthetic import get_suite

        return get_suite(suite).chance
    except (ImportError, KeyError):
        return None


def target_token_budget(processor, rows: Iterable[dict[str, Any]]) -> int:
    """Generation length that fits the longest reference target, plus a margin for the end token."""
    longest = max(len(processor.tokenizer(target_text(r), add_special_tokens=False)["input_ids"]) for r in rows)
    return longest + 4


# ---- training --------------------------------------------------------------------------------------

def _sft_config(settings: SFTSettings, output_dir: Path):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        lr_scheduler_type="cosine",
        warmup_steps=math.ceil(settings.warmup_ratio * settings.max_steps),
        weight_decay=settings.weight_decay,
        completion_only_loss=True,
        max_length=None,           # truncation would cut visual tokens or the answer
        logging_steps=1,
        # TRL turns recomputation on by default; the warm start is tiny-profile only (the paper does no
        # SFT), its models need no memory saving, and 300 steps ran 17 % faster without it (docs/train.md)
        gradient_checkpointing=False,
        save_strategy="no",
        report_to=[],
        seed=settings.seed,
        data_seed=settings.seed,
        use_cpu=not _cuda(),
        bf16=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
        remove_unused_columns=False,
        train_sampling_strategy="sequential",  # step_stream already holds the seeded order, phases included
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def train_sft(model_dir: str | Path, train_files: Sequence[str | Path], out_dir: str | Path,
              settings: SFTSettings, test_files: Sequence[str | Path] = (),
              provenance_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Warm-start ``model_dir`` on ``train_files``; save model, processor and sft.json to ``out_dir``.

    Returns the sft.json record: settings, loss curve, wall time, and per-suite held-out accuracy of
    the untrained and the trained model on ``test_files`` (``settings.eval_limit`` rows per suite).
    """
    from datasets import Dataset
    from transformers import set_seed
    from trl import SFTTrainer

    from kawhi.models.load import load_model
    from kawhi.provenance import provenance

    started = time.perf_counter()
    set_seed(settings.seed)
    model, processor = load_model(model_dir)
    train_rows = [r for f in train_files for r in load_rows(f)]
    if not train_rows:
        raise ValueError(f"no SFT rows in {list(map(str, train_files))}")
    test_rows = _heldout_rows(test_files, settings.eval_limit)
    max_new_tokens = target_token_budget(processor, test_rows or train_rows[:200])

    record: dict[str, Any] = {"model": str(model_dir), "train_files": [str(f) for f in train_files],
                              "test_files": [str(f) for f in test_files], "settings": asdict(settings),
                              "n_train": len(train_rows), "max_new_tokens": max_new_tokens}
    if test_rows and settings.eval_untrained:
        record["untrained"] = heldout_accuracy(model, processor, test_rows, max_new_tokens,
                                               settings.eval_batch_size)

    train_rows = weight_rows(train_rows, settings.suite_weights or {}, settings.seed)
    stream = step_stream(train_rows, settings)
    targets = stream_targets(stream, settings.guess_share, settings.seed)
    dataset = Dataset.from_list([sft_example(r, t) for r, t in zip(stream, targets)])
    model.train()
    with tempfile.TemporaryDirectory(prefix="kawhi-sft-") as scratch:
        trainer = SFTTrainer(model=model, args=_sft_config(settings, Path(scratch)),
                             train_dataset=dataset, processing_class=processor)
        trainer.train()
    losses = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
    record["loss_curve"] = losses
    record["train_wall_time_s"] = time.perf_counter() - started

    if test_rows:
        record["warmstarted"] = heldout_accuracy(model, processor, test_rows, max_new_tokens,
                                                 settings.eval_batch_size)
        record["accuracy"] = _accuracy_table(record)
    record["wall_time_s"] = time.perf_counter() - started
    record["provenance"] = provenance(provenance_settings or asdict(settings), seed=settings.seed)

    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        write_json(tmp / "sft.json", record)
    log.info("SFT done in %.0f s: %s", record["wall_time_s"], record.get("accuracy"))
    return record


def weight_rows(rows: list[dict[str, Any]], weights: dict[str, float], seed: int = 0) -> list[dict[str, Any]]:
    """Each suite's rows repeated ``weights[suite]`` times (default 1; a fraction takes a seeded sample).

    Sampling weights per suite: the suites differ in how many steps their perception needs, and
    SFT shuffles all rows together, so a weight sets a suite's share of the steps.
    """
    import random

    require_suites(weights, rows, "sft.suite_weights")
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for suite in dict.fromkeys(r["suite"] for r in rows):
        mine = [r for r in rows if r["suite"] == suite]
        weight = float(weights.get(suite, 1.0))
        whole, frac = int(weight), weight - int(weight)
        out += mine * whole + rng.sample(mine, round(frac * len(mine)))
    return out


def require_suites(names: Iterable[str], rows: list[dict[str, Any]], key: str) -> None:
    """Raise naming ``key`` when ``names`` holds suites that have no train rows."""
    unknown = sorted(set(names) - {r["suite"] for r in rows})
    if unknown:
        raise ValueError(f"{key} names suites without train rows: {unknown}")


def step_stream(rows: list[dict[str, Any]], settings: SFTSettings) -> list[dict[str, Any]]:
    """The rows of every step in order, ``max_steps * batch_size`` of them (a seeded shuffle per pass).

    With ``first_suites``, the first ``first_steps`` steps draw only from those suites, the rest from
    all rows: a curriculum knob (tried with shapes_count first; no gain measured at 600 of 2,000 steps,
    worklog/curriculum_feedback.md round 3).
    """
    import random

    rng = random.Random(settings.seed)
    total = settings.max_steps * settings.batch_size

    def passes(pool: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while len(out) < n:
            order = list(pool)
            rng.shuffle(order)
            out += order
        return out[:n]

    first: list[dict[str, Any]] = []
    if settings.first_suites:
        require_suites(settings.first_suites, rows, "sft.first_suites")
        wanted = set(settings.first_suites)
        pool = [r for r in rows if r["suite"] in wanted]
        first = passes(pool, min(settings.first_steps, settings.max_steps) * settings.batch_size)
    return first + passes(rows, total - len(first))


def _heldout_rows(test_files: Sequence[str | Path], limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows of each test file (question types cycle, so each type is covered)."""
    rows: list[dict[str, Any]] = []
    for f in test_files:
        rows += load_rows(f)[:limit]
    return rows


def _accuracy_table(record: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """suite -> {chance, untrained, warmstarted} accuracy in percent."""
    table = {}
    for suite, result in record["warmstarted"].items():
        untrained = record.get("untrained", {}).get(suite, {}).get("accuracy")
        table[suite] = {"chance": chance_accuracy(suite), "untrained": untrained,
                        "warmstarted": result["accuracy"], "n": result["n"]}
    return table
