"""The global head-ablation sweep over an MME-style benchmark (METHOD.md section 1).

The unablated model is scored once, then once more per query-head index ``h`` with ``h`` masked in
every decoder layer. Each question costs one batched forward: the answer is read from the logits of
the first generated token (the "Yes" against the "No" first tokens, lower-case variants included).
The benchmark is preprocessed once -- chat template, image processor, padding -- and the same
tensors feed all H+1 passes. Masking a text-decoder head cannot change what the vision tower
computes, so its outputs are recorded on the unmasked pass and replayed on the H masked ones
(``VisionCache``): each masked pass costs only the text decoder.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from kawhi.data.prompts import build_messages
from kawhi.data.mme import NO, OTHER, YES, load_mme, mme_scores, normalise_answer, parse_yes_no
from kawhi.method.heads import mask_heads, num_query_heads

log = logging.getLogger(__name__)

META_COLUMNS = ("question_id", "category", "answer")
ABLATION_COLUMNS = ("head", "total", "perception", "cognition", "drop")


# ---- model loading ---------------------------------------------------------------------------------

def load_model_and_processor(model_dir: str | Path, device: str | None = None):
    """(model in eval mode, processor) from a saved model directory or hub id.

    Through ``kawhi.models.load.load_model``, as every stage loads models; bfloat16 on a GPU.
    """
    from kawhi.models.load import load_model

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model, processor = load_model(model_dir, dtype=dtype, device=device)
    model.eval()
    return model, processor


# ---- preprocessing once ----------------------------------------------------------------------------

@dataclass
class EncodedBenchmark:
    """Processor outputs in fixed batches, plus each row's metadata in the original row order.

    ``batches[b]`` holds model inputs; ``order[b]`` the original row indices of its rows. Rows are
    sorted by prompt size before batching so padding is small.
    """

    batches: list[dict[str, torch.Tensor]]
    order: list[list[int]]
    meta: list[dict[str, Any]]
    yes_ids: list[int]
    no_ids: list[int]
    prep_seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.meta)


def yes_no_token_ids(tokenizer) -> tuple[list[int], list[int]]:
    """First token ids of "Yes"/"yes" and "No"/"no" (each set deduplicated, the two sets disjoint)."""
    def first_ids(words: Sequence[str]) -> list[int]:
        ids = []
        for word in words:
            tokens = tokenizer.encode(word, add_special_tokens=False)
            if tokens and tokens[0] not in ids:
                ids.append(int(tokens[0]))
        return ids

    yes_ids, no_ids = first_ids(["Yes", "yes"]), first_ids(["No", "no"])
    if not yes_ids or not no_ids:
        raise ValueError("the tokenizer encodes 'Yes' or 'No' to nothing")
    # A shared first token cannot tell the answers apart; keep only the distinguishing ones.
    shared = set(yes_ids) & set(no_ids)
    yes_ids = [i for i in yes_ids if i not in shared]
    no_ids = [i for i in no_ids if i not in shared]
    if not yes_ids or not no_ids:
        raise ValueError(f"'Yes' and 'No' start with the same token(s) {sorted(shared)}; "
                         "the first-token readout cannot separate them")
    return yes_ids, no_ids


def prompt_text(processor, question: str) -> str:
    """The chat prompt for one yes/no question (one image), ending where the answer starts."""
    messages = build_messages(question, [], n_images=1, yes_no=True)
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def _as_rgb(image) -> Any:
    return image.convert("RGB") if hasattr(image, "convert") else image


def encode_benchmark(processor, rows, batch_size: int, dtype: torch.dtype | None = None,
                      pin_memory: bool = False) -> EncodedBenchmark:
    """Run the chat template and the processor over ``rows`` once, in padded batches kept in CPU memory.

    ``rows`` is a ``datasets.Dataset`` (or a list of dicts) with MME columns. Floating inputs
    (pixel values) are cast to ``dtype`` (the model's) so they are stored once at the size used.
    The cache stays on the CPU (the full MME's pixel values run to gigabytes); each pass copies a
    batch to the model's device, from pinned memory when ``pin_memory`` (GPU) so the copy overlaps.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    start = time.perf_counter()
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"  # the last position is every row's answer position
    yes_ids, no_ids = yes_no_token_ids(tokenizer)

    images, texts, meta = [], [], []
    for i, row in enumerate(rows):
        for key in ("image", "question", *META_COLUMNS):
            if key not in row:
                raise KeyError(f"benchmark row {i} has no '{key}' (keys: {sorted(row)})")
        image = _as_rgb(row["image"])
        images.append(image)
        texts.append(prompt_text(processor, row["question"]))
        meta.append({"question_id": str(row["question_id"]), "category": str(row["category"]),
                     "answer": normalise_answer(row["answer"], f" (row {i})")})
    if not meta:
        raise ValueError("the benchmark has no rows")

    # Similar-sized prompts share a batch: image area first (it sets the number of image tokens).
    def size_key(i: int) -> tuple[int, int]:
        size = getattr(images[i], "size", (0, 0))
        return (size[0] * size[1], len(texts[i]))

    sorted_rows = sorted(range(len(meta)), key=size_key)
    batches, order = [], []
    for b in range(0, len(sorted_rows), batch_size):
        idx = sorted_rows[b:b + batch_size]
        inputs = processor(text=[texts[i] for i in idx], images=[[images[i]] for i in idx],
                           padding=True, return_tensors="pt")
        batch = {}
        for key, value in inputs.items():
            if not isinstance(value, torch.Tensor):
                continue
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype)
            batch[key] = value.pin_memory() if pin_memory else value
        batches.append(batch)
        order.append(idx)
    return EncodedBenchmark(batches=batches, order=order, meta=meta, yes_ids=yes_ids, no_ids=no_ids,
                             prep_seconds=time.perf_counter() - start)


# ---- vision-tower replay ---------------------------------------------------------------------------

def vision_tower(model: nn.Module) -> nn.Module | None:
    """The vision encoder of a Qwen-VL model (``model.model.visual``), or None for a text-only model."""
    inner = getattr(model, "model", model)
    tower = getattr(inner, "visual", None)
    return tower if isinstance(tower, nn.Module) else None


def _copy_to(obj: Any, device: torch.device | str) -> Any:
    """``obj`` with every tensor moved to ``device``, in fresh containers.

    Fresh containers matter: ``get_image_features`` rewrites fields of the output it receives (it
    splits ``pooler_output`` per image), so every replay must hand out a new object.
    """
    from transformers.utils import ModelOutput

    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, ModelOutput):
        return type(obj)(**{k: _copy_to(v, device) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return type(obj)(_copy_to(v, device) for v in obj)
    if isinstance(obj, dict):
        return {k: _copy_to(v, device) for k, v in obj.items()}
    return obj


class VisionCache:
    """The vision tower's output per batch: recorded on the first pass, replayed on later passes.

    Kept in CPU memory (the full MME's image features run to gigabytes on a 7B model) and copied to
    the model's device on replay. Valid only for one model and one ``EncodedBenchmark``.
    """

    def __init__(self) -> None:
        self.outputs: dict[int, Any] = {}

    @contextlib.contextmanager
    def replaying(self, model: nn.Module, key: int):
        """While the block runs, the vision tower answers batch ``key`` from the cache if it can."""
        tower = vision_tower(model)
        if tower is None:
            yield
            return
        instance_forward = tower.__dict__.get("forward")  # e.g. an accelerate hook's wrapper
        original = tower.forward

        def forward(*args, **kwargs):
            if key in self.outputs:
                device = next(tower.parameters()).device
                return _copy_to(self.outputs[key], device)
            out = original(*args, **kwargs)
            self.outputs[key] = _copy_to(out, "cpu")
            return out

        tower.forward = forward
        try:
            yield
        finally:
            if instance_forward is None:
                del tower.forward
            else:
                tower.forward = instance_forward


# ---- scoring passes --------------------------------------------------------------------------------

def yes_no_from_logits(logits: torch.Tensor, yes_ids: Sequence[int], no_ids: Sequence[int]) -> list[str]:
    """Per row, "Yes" if the Yes tokens' probability mass beats the No tokens', "No" if less, else Other."""
    logits = logits.float()
    yes = torch.logsumexp(logits[:, list(yes_ids)], dim=-1)
    no = torch.logsumexp(logits[:, list(no_ids)], dim=-1)
    return [YES if y > n else NO if n > y else OTHER for y, n in zip(yes.tolist(), no.tolist())]


@torch.inference_mode()
def predict_yes_no(model: nn.Module, prepared: EncodedBenchmark,
                   vision_cache: VisionCache | None = None) -> list[str]:
    """One forward per batch; the prediction of each row, in the benchmark's original order.

    With ``vision_cache``, the vision tower's outputs are recorded (first call) or replayed.
    """
    device = next(model.parameters()).device
    predictions: list[str] = [OTHER] * len(prepared)
    for b, (batch, idx) in enumerate(zip(prepared.batches, prepared.order)):
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        replay = vision_cache.replaying(model, b) if vision_cache is not None else contextlib.nullcontext()
        # logits_to_keep=1: only the answer position goes through the LM head.
        with replay:
            logits = model(**batch, use_cache=False, logits_to_keep=1).logits[:, -1, :]
        for i, label in zip(idx, yes_no_from_logits(logits, prepared.yes_ids, prepared.no_ids)):
            predictions[i] = label
    return predictions


def score_predictions(prepared: EncodedBenchmark, predictions: Sequence[str]) -> dict[str, Any]:
    rows = [dict(meta, prediction=pred) for meta, pred in zip(prepared.meta, predictions)]
    return mme_scores(rows)


def score_model(model: nn.Module, prepared: EncodedBenchmark, heads: Sequence[int] = (),
                vision_cache: VisionCache | None = None) -> dict[str, Any]:
    """MME scores of ``model`` with ``heads`` masked in every layer (none: the unablated model)."""
    with mask_heads(model, heads):
        return score_predictions(prepared, predict_yes_no(model, prepared, vision_cache))


@torch.inference_mode()
def generate_answers(model: nn.Module, processor, rows, batch_size: int = 8,
                     max_new_tokens: int = 16) -> list[str]:
    """Greedy full generations for yes/no rows (the evaluation path; read them with parse_yes_no)."""
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    rows = list(rows)
    answers: list[str] = []
    for b in range(0, len(rows), batch_size):
        chunk = rows[b:b + batch_size]
        inputs = processor(text=[prompt_text(processor, r["question"]) for r in chunk],
                           images=[[_as_rgb(r["image"])] for r in chunk], padding=True,
                           return_tensors="pt").to(device)
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        answers += tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return answers


def score_by_generation(model: nn.Module, processor, rows, batch_size: int = 8,
                        max_new_tokens: int = 16) -> dict[str, Any]:
    """MME scores from full generations parsed as lmms-eval does (slower; what evaluation reports)."""
    rows = list(rows)
    answers = generate_answers(model, processor, rows, batch_size, max_new_tokens)
    return mme_scores([{"question_id": r["question_id"], "category": r["category"], "answer": r["answer"],
                        "prediction": parse_yes_no(a)} for r, a in zip(rows, answers)])


# ---- the sweep and the selection rule --------------------------------------------------------------

@dataclass
class SweepResult:
    baseline: dict[str, Any]
    per_head: list[dict[str, Any]] = field(default_factory=list)   # index = head
    prep_seconds: float = 0.0
    sweep_seconds: float = 0.0

    @property
    def drops(self) -> list[float]:
        return [self.baseline["total"] - s["total"] for s in self.per_head]

    def ablation_rows(self) -> list[dict[str, float]]:
        """Rows of ablation.csv: head, total, perception, cognition, drop."""
        return [{"head": h, "total": s["total"], "perception": s["perception"],
                 "cognition": s["cognition"], "drop": self.baseline["total"] - s["total"]}
                for h, s in enumerate(self.per_head)]


def run_sweep(model: nn.Module, prepared: EncodedBenchmark, heads: Iterable[int] | None = None,
              progress: bool = True, cache_vision: bool = True) -> SweepResult:
    """Score the unablated model, then each head index masked in all layers.

    ``cache_vision`` replays the unmasked pass's vision-tower outputs in the masked passes.
    """
    from tqdm.auto import tqdm

    heads = list(range(num_query_heads(model))) if heads is None else list(heads)
    cache = VisionCache() if cache_vision else None
    start = time.perf_counter()
    result = SweepResult(baseline=score_model(model, prepared, (), cache), prep_seconds=prepared.prep_seconds)
    for h in tqdm(heads, desc="head ablation", unit="head", disable=not progress):
        result.per_head.append(score_model(model, prepared, [h], cache))
    result.sweep_seconds = time.perf_counter() - start
    return result


def select_heads(drops: Sequence[float], threshold: float, top_k: int) -> tuple[list[int], str]:
    """Heads whose drop exceeds ``threshold``; if none, the ``top_k`` largest drops ("top_k").

    Ties in the fallback go to the lower head index, so the choice is deterministic.
    """
    passed = [h for h, d in enumerate(drops) if d > threshold]
    if passed:
        return passed, "threshold"
    ranked = sorted(range(len(drops)), key=lambda h: (-drops[h], h))
    return sorted(ranked[:top_k]), "top_k"


# ---- the command's work ----------------------------------------------------------------------------

def identify_heads(model_dir: str | Path, bench: str | Path, out_dir: str | Path, threshold: float = 100.0,
                   top_k: int = 2, batch_size: int = 32, limit: int | None = None,
                   settings: dict[str, Any] | None = None, model_name: str | None = None,
                   cache_vision: bool = True, progress: bool = True) -> dict[str, Any]:
    """The whole stage: load, preprocess once, sweep, select, and write the three outputs."""
    from kawhi.atomic import atomic_path, write_json
    from kawhi.ablation_figure import save_ablation_figure
    from kawhi.provenance import provenance

    settings = dict(settings or {})
    model_name = model_name or settings.get("model") or Path(model_dir).name
    out_dir = Path(out_dir)

    rows = load_mme(bench, limit=limit)
    model, processor = load_model_and_processor(model_dir)
    device = next(model.parameters()).device
    prepared = encode_benchmark(processor, rows, batch_size, dtype=model.dtype,
                                 pin_memory=device.type == "cuda")
    log.info("%s: %d questions in %d batches, preprocessed in %.1fs", bench, len(prepared),
             len(prepared.batches), prepared.prep_seconds)

    result = run_sweep(model, prepared, progress=progress, cache_vision=cache_vision)
    heads, selected_by = select_heads(result.drops, threshold, top_k)
    baseline = result.baseline["total"]
    log.info("baseline %.2f; critical heads %s (by %s)", baseline, heads, selected_by)
    if selected_by == "top_k" and any(result.drops[h] <= 0 for h in heads):
        log.warning("no head passes the threshold and the top-%d fallback includes heads whose masking "
                    "does not lower the score (drops %s): the model may not read the image yet",
                    top_k, [round(result.drops[h], 2) for h in heads])

    import pandas as pd

    ablation = pd.DataFrame(result.ablation_rows(), columns=list(ABLATION_COLUMNS))
    with atomic_path(out_dir / "ablation.csv") as tmp:
        ablation.to_csv(tmp, index=False)
    how = "" if selected_by == "threshold" else f" (top-{top_k} fallback)"
    title = f"{model_name}: critical heads {heads}{how}"
    save_ablation_figure(ablation, baseline, threshold, title,
                         [out_dir / "figure3.png", out_dir / "figure3.pdf"], selected=heads)
    summary = {
        "heads": heads,
        "threshold": threshold,
        "baseline": baseline,
        "model": model_name,
        "selected_by": selected_by,
        "top_k": top_k,
        "drops": result.drops,
        "baseline_scores": result.baseline,
        "benchmark": str(bench),
        "n_questions": len(prepared),
        "n_heads": len(result.per_head),
        "readout": "first-token logits: Yes/yes vs No/no",
        "wall_time_s": {"preprocess": result.prep_seconds, "sweep": result.sweep_seconds},
        "provenance": provenance(settings),
    }
    write_json(out_dir / "critical_heads.json", summary)
    return summary
