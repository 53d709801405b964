"""``kawhi evaluate``: one checkpoint on one or more benchmarks, through lm-evaluation-harness.

lm-eval does the generation (``hf-multimodal`` on CPU/GPU, ``vllm-vlm`` on GPU), the prompt rendering
with the model's chat template, batching and per-sample bookkeeping; the project supplies the task
(:mod:`kawhi.eval.tasks`) and the scoring (:mod:`kawhi.eval.rescore`, also behind ``kawhi score``).
Outputs: the result JSON and ``{stem}.samples.jsonl`` beside it, both written atomically.

With ``num_samples`` = k > 1 (sampled at ``temperature``) the result's ``metrics`` are pass@1 -- each
metric computed on each of the k draws and averaged -- and ``pass_at_k`` holds the metrics of the best
of the k completions per row (pass@k for 0/1 scores). One samples line per row still: its ``score`` is
the row's mean over the k draws, ``samples`` lists every draw (response, extracted answer, score), and
``response``/``extracted``/``scoring`` are the first draw's.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kawhi.atomic import write_json, write_text
from kawhi.eval.rescore import iter_jsonl, result_document, sample_line, score_samples
from kawhi.eval.tasks import (LOG_KEYS, BadRowError, BenchmarkTask, find_bad_rows, load_benchmark,
                              responses_of, row_without_images)
from kawhi.gpu import GPUUnavailableError, cuda_device_count

log = logging.getLogger(__name__)

BACKENDS = ("hf", "vllm")


class BackendUnavailableError(GPUUnavailableError):
    """The requested generation backend cannot run on this machine (says what is missing)."""


@dataclass(frozen=True)
class EvalSettings:
    """What one evaluation depends on (the ``eval`` config block plus the benchmark and seed)."""

    benchmark: str
    backend: str = "hf"
    batch_size: int = 16
    max_new_tokens: int = 48
    limit: int | None = None
    skip_bad_rows: bool = False
    judge: dict[str, Any] | None = None
    num_samples: int = 1       # k completions per row; pass@1 = mean over them, pass@k = best of them
    temperature: float = 0.0   # 0 = greedy (then num_samples must be 1)
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalSettings":
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        if "benchmark" not in d:
            raise KeyError("eval settings lack 'benchmark'")
        if d.get("backend", "hf") not in BACKENDS:
            raise ValueError(f"eval.backend must be one of {BACKENDS}, got {d.get('backend')!r}")
        return cls(**{k: v for k, v in d.items() if k in known},
                   extra={k: v for k, v in d.items() if k not in known})

    def __post_init__(self) -> None:
        if self.num_samples < 1:
            raise ValueError(f"eval.num_samples must be at least 1, got {self.num_samples}")
        if self.num_samples > 1 and self.temperature == 0:
            raise ValueError(f"eval.num_samples = {self.num_samples} needs eval.temperature > 0 (greedy "
                             f"decoding draws the same completion k times)")

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "extra"}
        d.update(self.extra)
        return d


def samples_path(out_json: str | Path) -> Path:
    """``{bench}.json`` -> ``{bench}.samples.jsonl`` (the per-sample log beside the result)."""
    p = Path(out_json)
    return p.with_name(p.name.removesuffix(".json") + ".samples.jsonl")


def check_backend(backend: str) -> None:
    """Fail at once, before loading anything, when ``backend`` cannot run here."""
    if backend not in BACKENDS:
        raise BackendUnavailableError(f"unknown eval backend {backend!r}; choose one of {BACKENDS}")
    if backend == "vllm":
        missing = []
        if importlib.util.find_spec("vllm") is None:
            missing.append("the vllm package is not installed (pip install vllm)")
        if cuda_device_count() == 0:
            missing.append("no CUDA GPU is visible")
        if missing:
            raise BackendUnavailableError("eval backend 'vllm' (lm-eval vllm-vlm) needs a GPU with vLLM: "
                                          + "; ".join(missing) + ". Use --backend hf (eval.backend: hf) here.")


def vllm_parallelism(n_gpus: int) -> dict[str, int]:
    """vLLM arguments for a job granted ``n_gpus``: one model sharded over all of them (tensor parallel).

    The paper's models (7B, 4B) fit one 80 GB GPU, but sharding still speeds up a single evaluation job;
    data parallelism would need one engine per GPU, which lm-eval's vllm-vlm does not run.
    """
    if n_gpus < 1:
        raise BackendUnavailableError("eval backend 'vllm' needs at least one GPU in this job")
    return {"tensor_parallel_size": n_gpus}


def build_lm(model_dir: str | Path, backend: str, batch_size: int, max_new_tokens: int, seed: int = 0):
    """The lm-eval model object for ``model_dir``: HFMultimodalLM, or VLLM_VLM on GPU."""
    check_backend(backend)
    if backend == "vllm":
        from lm_eval.models.vllm_vlms import VLLM_VLM

        # vLLM schedules its own batches ("auto"); greedy decoding makes the seed matter only for ties.
        from kawhi.gpu import job_gpu_count

        return VLLM_VLM(pretrained=str(model_dir), batch_size="auto", max_gen_toks=max_new_tokens,
                        dtype="auto", seed=seed, **vllm_parallelism(job_gpu_count()))
    import torch
    from lm_eval.models.hf_vlms import HFMultimodalLM

    from kawhi.models.load import load_model

    on_gpu = torch.cuda.is_available()
    device = "cuda" if on_gpu else "cpu"
    model, _ = load_model(model_dir, dtype=torch.bfloat16 if on_gpu else None, device=device)
    # HFMultimodalLM loads the processor itself from model.name_or_path (the checkpoint directory):
    # handing it our processor object would skip setting its `processor` attribute.
    return HFMultimodalLM(pretrained=model, backend="causal", batch_size=batch_size,
                          max_gen_toks=max_new_tokens, device=device)


@dataclass
class PreparedBenchmark:
    """One benchmark checked and ready to run: its rows read, its bad rows found, its lm-eval task built."""

    settings: EvalSettings
    data_file: Path
    out: Path
    dataset: Any
    bad: list[Any]
    task: BenchmarkTask
    scorer: Any
    judge: Any


def prepare_benchmark(data_file: str | Path, out: str | Path, settings: EvalSettings) -> PreparedBenchmark:
    """Everything about one benchmark that needs no model: the file, its bad rows, the scorer, the task.

    Runs before the model loads, so a missing file or a bad row costs nothing."""
    from kawhi.judge import build_judge
    from kawhi.eval.scorers import get_scorer

    check_backend(settings.backend)
    data_file = Path(data_file)
    if not data_file.exists():
        raise FileNotFoundError(f"benchmark data {data_file} does not exist")
    judge = build_judge(settings.judge, settings.benchmark)
    scorer = get_scorer(settings.benchmark, judge=judge)

    dataset = load_benchmark(data_file, decode_images=False)
    clash = [c for c in LOG_KEYS if c in dataset.column_names]
    if clash:
        raise BadRowError(f"{data_file}: column(s) {clash} clash with the fields the samples log adds; "
                          f"rename them when preparing the benchmark")
    bad = find_bad_rows(dataset)
    if bad and not settings.skip_bad_rows:
        listed = ", ".join(f"id {b.row_id!r} ({b.reason})" for b in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise BadRowError(f"{data_file}: {len(bad)} bad row(s): {listed}{more}; fix the data or set "
                          f"eval.skip_bad_rows: true to skip and count them")
    for b in bad:
        log.warning("%s: skipping id %r (%s)", data_file, b.row_id, b.reason)

    task = BenchmarkTask(benchmark=settings.benchmark, data_file=data_file, scorer=scorer,
                         max_new_tokens=settings.max_new_tokens,
                         skip_ids=frozenset(b.row_id for b in bad),
                         num_samples=int(settings.num_samples), temperature=float(settings.temperature))
    return PreparedBenchmark(settings, data_file, Path(out), dataset, bad, task, scorer, judge)


def evaluate(model_dir: str | Path, data_file: str | Path, out: str | Path, settings: EvalSettings, *,
             model_name: str | None = None, checkpoint: str | None = None, lm: Any = None) -> dict[str, Any]:
    """Evaluate one checkpoint on one benchmark; write ``out`` and its samples JSONL; return the result.

    ``lm`` lets a caller reuse an lm-eval model object across benchmarks (see evaluate_benchmarks).
    """
    prepared = prepare_benchmark(data_file, out, settings)
    if lm is None:
        lm = build_lm(model_dir, settings.backend, settings.batch_size, settings.max_new_tokens,
                      seed=int(settings.seed))
    return run_benchmark(prepared, lm, model_dir, model_name=model_name, checkpoint=checkpoint)


# Settings the lm-eval model object is built with: equal across the benchmarks one process evaluates.
LM_SETTINGS = ("backend", "batch_size", "max_new_tokens", "seed")


def evaluate_benchmarks(model_dir: str | Path, benchmarks: list[tuple[str | Path, str | Path, EvalSettings]], *,
                        model_name: str | None = None, checkpoint: str | None = None,
                        after_load: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """Evaluate one checkpoint on several benchmarks (``(data_file, out, settings)`` each), loading the model
    once. Every benchmark is checked before the model loads; each result is written as soon as it is done,
    exactly as :func:`evaluate` would write it alone (lm-eval reseeds at the start of every benchmark).
    ``after_load`` runs once the model is loaded (the CLI freezes the garbage collector there)."""
    if not benchmarks:
        raise ValueError("no benchmark to evaluate")
    first = benchmarks[0][2]
    for _, _, settings in benchmarks[1:]:
        differ = [k for k in LM_SETTINGS if getattr(settings, k) != getattr(first, k)]
        if differ:
            raise ValueError(f"benchmarks {first.benchmark!r} and {settings.benchmark!r} differ in {differ}: "
                             f"one process loads the model once, with one value of each")
    prepared = [prepare_benchmark(data, out, settings) for data, out, settings in benchmarks]
    lm = build_lm(model_dir, first.backend, first.batch_size, first.max_new_tokens, seed=int(first.seed))
    if after_load is not None:
        after_load()
    return [run_benchmark(p, lm, model_dir, model_name=model_name, checkpoint=checkpoint) for p in prepared]


def run_benchmark(prepared: PreparedBenchmark, lm: Any, model_dir: str | Path, *, model_name: str | None = None,
                  checkpoint: str | None = None) -> dict[str, Any]:
    """Generate with ``lm`` on a prepared benchmark, score, and write the result and its samples."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    started = time.perf_counter()
    settings, task, scorer, bad = prepared.settings, prepared.task, prepared.scorer, prepared.bad
    seed = int(settings.seed)
    output = lm_eval.simple_evaluate(
        model=lm, tasks=[task.task_config()], task_manager=TaskManager(include_defaults=False),
        apply_chat_template=True, limit=settings.limit, log_samples=True, bootstrap_iters=0,
        random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed)

    # Rows come from our own read of the docs lm-eval saw (its logged docs have images and bytes
    # replaced by hashes); doc_id indexes the processed docs.
    docs = task.process_docs(prepared.dataset)
    samples = sorted(output["samples"][task.name], key=lambda s: s["doc_id"])
    rows = [row_without_images(docs[int(s["doc_id"])]) for s in samples]
    draws = [_responses(s) for s in samples]  # per row: its k completions
    k = int(settings.num_samples)
    if any(len(d) != k for d in draws):
        raise RuntimeError(f"lm-eval returned {sorted({len(d) for d in draws})} completions per row, "
                           f"expected eval.num_samples = {k}")
    prompts = [s["arguments"][0][0] for s in samples]
    scored_draws, metric_draws = [], []
    for j in range(k):
        scored_j, metrics_j = score_samples(scorer, rows, [d[j] for d in draws], precomputed=task.scored)
        scored_draws.append(scored_j)
        metric_draws.append(metrics_j)
    metrics = {name: sum(m[name] for m in metric_draws) / k for name in metric_draws[0]}
    sampling = {"num_samples": k, "temperature": float(settings.temperature)}
    if k > 1:
        sampling["pass_at_1_per_draw"] = [m[scorer.primary] for m in metric_draws]
        sampling["pass_at_k"] = pass_at_k(scorer, rows, scored_draws)

    lm_eval_mean = output["results"][task.name].get("score,none")
    result = result_document(
        benchmark=settings.benchmark, scorer=scorer, metrics=metrics, n=len(rows), n_skipped=len(bad),
        judge=prepared.judge, settings=settings.to_dict(), model=model_name or Path(model_dir).name,
        checkpoint=checkpoint or str(model_dir),
        skipped_ids=[b.row_id for b in bad], **sampling,
        lm_eval={"task": task.name, "mean_score": None if lm_eval_mean is None else 100.0 * lm_eval_mean,
                 "backend": settings.backend, "batch_size": settings.batch_size,
                 "max_new_tokens": settings.max_new_tokens, "limit": settings.limit},
        wall_time_s=round(time.perf_counter() - started, 3))
    lines = [row_line(row, prompt, [d[i] for d in scored_draws], draw)
             for i, (row, prompt, draw) in enumerate(zip(rows, prompts, draws))]
    write_text(samples_path(prepared.out), iter_jsonl(lines))
    write_json(prepared.out, result)  # last: the result's existence means the samples beside it are complete
    return result


def _responses(sample: dict[str, Any]) -> list[str]:
    """The k completions of one lm-eval sample (generate_until with ``repeats`` = k, ``take_first_k``)."""
    filtered = sample.get("filtered_resps")
    if filtered:
        return responses_of(filtered[0])
    return [r[0] if isinstance(r, list) else r for r in sample["resps"]]


def pass_at_k(scorer: Any, rows: list[dict[str, Any]], scored_draws: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """pass@k: the benchmark's metrics over the best of the k draws per row (highest score; the first
    among equals). For 0/1 scores the primary metric is the share of rows with a right answer in k."""
    k = len(scored_draws)
    best = [max((draws[i] for draws in scored_draws), key=lambda s: float(s["score"]))
            for i in range(len(rows))]
    metrics = {name: float(value) for name, value in scorer.aggregate(rows, best).items()}
    return {"k": k, "metrics": metrics, "primary": metrics[scorer.primary]}


def row_line(row: dict[str, Any], prompt: str | None, scored: list[dict[str, Any]], responses: list[str]) -> dict[str, Any]:
    """One samples line per row: the first draw's fields, ``score`` = the mean over the draws (the row's
    pass@1, what a paired comparison over items uses) and, with k > 1, every draw under ``samples``."""
    line = sample_line(row, prompt, responses[0], scored[0])
    if len(responses) > 1:
        line["score"] = sum(float(s["score"]) for s in scored) / len(scored)
        line["samples"] = [{"response": r, "extracted": s.get("extracted"), "score": s.get("score")}
                           for r, s in zip(responses, scored)]
    return line
