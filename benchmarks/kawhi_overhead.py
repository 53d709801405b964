"""What KAWHI adds to a policy update, on the tiny model and at Qwen2.5-VL-7B's layer widths (issue 13).

On one batch of rollouts in TRL's layout (left-padded prompt with one image, right-padded completion)
it times, interleaved round by round in the same process:

  (a) the policy forward + backward alone (a token log-likelihood loss over the completion);
  (b) the same forward + backward inside the trainer's ``QKCapture`` (final layer, critical heads, response
      queries and visual keys only), then everything the trainer does for the weights: the images rebuilt
      from ``pixel_values``, SGUF on them (a fresh cache every round, so SGUF is paid once per distinct
      image every round, as a training step whose images are new pays it), the alignment, the paragraphs
      and Eq. 15 (``completion_weights``); the capture is dropped after;
  (c) tiny model only: (b) with one ``ImageSelector`` kept across rounds, as the trainer keeps it across
      steps: a step whose images the run has already seen (a later epoch) finds their SGUF cached.
      (``num_iterations > 1`` reuses the weights themselves: no second capture or selection at all.)

Two models, each with random weights built in memory:

- ``tiny``: the embedded default's first model (``--config``, config/config.yaml: its sizes, image size and
  ``kawhi`` block) on one GRPO+KAWHI training step's batch as that config sets it: ``per_device_train_batch_size``
  rows (32), ``num_generations`` (8) of them per prompt and image, ``max_completion_length`` (48) response
  tokens (SGUF runs once per distinct image: 4 per step);
- ``paper shape``: Qwen2.5-VL-7B-Instruct's decoder widths and head counts (hidden 3584, 28 query heads,
  4 kv heads, head dim 128, MLP 18944, vision width 1280 with 16 heads, 14-px patches merged 2x2) with
  ``--wide-layers`` decoder layers and one vision block, a 896x896 image (32x32 = 1,024 visual tokens)
  and ``--wide-completion`` (1,024) response tokens per row, the paper's 9 published critical heads.
  The vocabulary is the tiny tokenizer's (1,024): the LM head's cost is the same in (a) and (b), so a
  smaller one only makes (a) cheaper and the ratio larger (conservative).

``--device cpu`` (the default) clears ``CUDA_VISIBLE_DEVICES``; ``--device cuda`` runs both models on the
GPU (timings synchronise the device; SGUF and the bookkeeping stay on the host, as in the trainer). The
capture's size is measured on the paper-shape batch
and scaled to ``--capture-rows`` (8) rows: every row has the same shape, and the capture holds per row
the same number of query and key vectors, so its size is exactly linear in rows.

Each ratio is the median over rounds of the per-round ratio to (a) (the two ran a fraction of a second
apart, so the machine's drift cancels), with a 95 % bootstrap interval on the tiny model. ``--malloc jobs``
(the default) runs under the glibc malloc thresholds every workflow job gets (kawhi/malloc.py), ``--malloc
glibc`` under glibc's defaults. Last lines:

    tiny_cached_ratio <tiny c/a>
    cpu_overhead_ratio <tiny b/a, CPU time> cpu_paper_shape_ratio <wide b/a, CPU time>
    overhead_ratio <tiny b/a> paper_shape_ratio <wide b/a> capture_mb <MB for capture-rows rows>

    nice python benchmarks/kawhi_overhead.py [--rounds 30] [--wide-rounds 3] [--wide-layers 2] [--threads 1]
                                             [--device cpu|cuda] [--malloc jobs|glibc] [--config config/config.yaml]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PAPER_HEADS = [0, 1, 3, 22, 23, 24, 25, 26, 27]  # Qwen2.5-VL-7B-Instruct, the paper's Appendix A
TINY_HEADS = [0, 5]
STEP = "The red circle sits left of the blue square, so the first count is two and the second is one."


def paper_shape_sizes(layers: int) -> dict[str, int]:
    """Qwen2.5-VL-7B-Instruct's widths (its config.json) with ``layers`` decoder layers and one vision block."""
    return dict(hidden_size=3584, num_hidden_layers=layers, num_attention_heads=28, num_key_value_heads=4,
                intermediate_size=18944, vision_hidden_size=1280, vision_depth=1, vision_num_heads=16, patch_size=14,
                vocab_size=1024)


@dataclass(frozen=True)
class TinyStep:
    """The embedded default's training step: its first model, image size, step batch and KAWHI settings."""

    arch: str
    sizes: dict[str, int]
    image_size: int
    rows: int
    generations: int
    completion_tokens: int
    settings: Any  # KawhiSettings


def tiny_step(config: dict[str, Any]) -> TinyStep:
    """``TinyStep`` of a loaded config's first model, GRPO with the full KAWHI variant (what its grid trains):
    one policy forward holds ``per_device_train_batch_size`` rollouts (``load_config`` refuses a batch that TRL
    cannot fill with whole groups)."""
    from kawhi.config import kawhi_settings, model_settings, train_settings

    model = next(iter(config["models"]))
    run = train_settings(config, model, "grpo", "kawhi")
    training = run["training"]
    model_config = model_settings(config, model)
    return TinyStep(arch=run["arch"], sizes=dict(model_config["tiny"]), image_size=int(model_config["image_size"]),
                    rows=int(training["per_device_train_batch_size"]), generations=int(training["num_generations"]),
                    completion_tokens=int(training["max_completion_length"]), settings=kawhi_settings(config, "kawhi"))


def build(sizes: dict[str, int], image_size: int, device: str = "cpu", arch: str = "qwen2_5_vl"):
    """(model, processor) with random weights, in memory (nothing saved), on ``device``."""
    import torch
    from transformers import AutoModelForImageTextToText

    from kawhi.models.tiny import TinySizes, build_config, build_processor
    from kawhi.models.tokenizer import train_tokenizer

    tiny = TinySizes.from_dict(sizes)
    tokenizer = train_tokenizer(vocab_size=tiny.vocab_size, seed=0)
    processor = build_processor(arch, tokenizer, patch_size=tiny.patch_size, image_size=image_size)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(build_config(arch, tiny, tokenizer, image_size),
                                                    dtype=torch.float32, attn_implementation="sdpa")
    model.to(device)
    model.train()
    return model, processor


def picture(size: int, seed: int):
    """A flat background with a few filled shapes and strokes (what SGUF separates into key regions)."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.integers(0, size * 3 // 4, 2)
        r = int(rng.integers(size // 16, size // 6))
        colour = tuple(int(c) for c in rng.integers(0, 200, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + r, y + r), fill=colour)
    for _ in range(4):
        draw.line(tuple(int(v) for v in rng.integers(0, size, 4)), fill=(20, 20, 20), width=max(1, size // 150))
    return image


@dataclass
class Batch:
    inputs: dict[str, Any]
    completion: Any
    mask: Any


def make_batch(processor, rows: int, completion_tokens: int, image_size: int, generations: int = 1,
               device: str = "cpu") -> Batch:
    """``rows`` rollouts with one image each (``generations`` consecutive rows share a prompt and its image, as
    GRPO's group does) and ``completion_tokens``-token paragraph responses (ragged ends)."""
    import torch

    from kawhi.data.prompts import build_messages

    tokenizer = processor.tokenizer
    texts = [processor.apply_chat_template(build_messages(f"How many shapes are in picture {i // generations}?"),
                                           add_generation_prompt=True, tokenize=False) for i in range(rows)]
    images = [picture(image_size, i // generations) for i in range(rows)]
    prompt = processor(text=texts, images=images, return_tensors="pt", padding=True, padding_side="left")
    body = "\n\n".join(f"Step {i + 1}. {STEP}" for i in range(8)) + "\n\nThe answer is \\boxed{2}."
    ids = tokenizer(body, add_special_tokens=False)["input_ids"]
    ids = (ids * (completion_tokens // max(len(ids), 1) + 1))[:completion_tokens]
    completion = torch.tensor([ids] * rows)
    mask = torch.ones_like(completion)
    for b in range(rows):  # ragged completions: row b stops 3b tokens early, then padding
        if b:
            mask[b, completion_tokens - 3 * b:] = 0
            completion[b, completion_tokens - 3 * b:] = tokenizer.pad_token_id
    inputs = {
        "input_ids": torch.cat([prompt["input_ids"], completion], dim=1),
        "attention_mask": torch.cat([prompt["attention_mask"], mask], dim=1),
        "pixel_values": prompt["pixel_values"],
        "image_grid_thw": prompt["image_grid_thw"],
    }
    if "mm_token_type_ids" in prompt:
        inputs["mm_token_type_ids"] = torch.cat([prompt["mm_token_type_ids"], torch.zeros_like(completion)], 1)
    return Batch({k: v.to(device) for k, v in inputs.items()}, completion.to(device), mask.to(device))


def policy_loss(model, batch: Batch):
    import torch

    width = batch.completion.shape[1]
    logits = model(**batch.inputs, logits_to_keep=width + 1).logits[:, :-1]
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, batch.completion.unsqueeze(-1)).squeeze(-1)
    return -(logp * batch.mask).sum() / batch.mask.sum()


def runners(model, processor, batch: Batch, heads: list[int], settings: Any) -> dict[str, Callable[[], int]]:
    """(a), (b) and (c) for one model and batch under ``settings`` (KawhiSettings); (b) and (c) return the bytes
    their capture held."""
    from kawhi.method.capture import QKCapture
    from kawhi.method.pixels import images_from_pixel_values
    from kawhi.method.selection import ImageSelector
    from kawhi.method.weights import capture_masks, completion_weights, image_token_id_and_merge

    token_id, merge = image_token_id_and_merge(model.config)
    width = batch.completion.shape[1]
    grid = batch.inputs["image_grid_thw"]

    def run_a() -> int:
        policy_loss(model, batch).backward()
        return 0

    def run_b(selector: ImageSelector | None = None) -> int:
        query_mask, key_mask = capture_masks(batch.inputs["input_ids"], width, token_id, settings, grid, merge)
        with QKCapture(model, heads, settings.layers, settings.rotary, query_mask, key_mask) as capture:
            loss = policy_loss(model, batch)
        captured = capture.captured()
        nbytes = captured.nbytes
        images = images_from_pixel_values(batch.inputs["pixel_values"], grid, processor.image_processor)
        completion_weights(captured, batch.inputs["input_ids"], grid, images, batch.mask, batch.completion,
                           processor.tokenizer, settings, model.config,
                           selector=ImageSelector() if selector is None else selector)
        del captured  # the trainer drops the capture as soon as the weights exist
        loss.backward()
        return nbytes

    kept = ImageSelector()  # (c): the trainer's selector, alive across steps
    return {"a": run_a, "b": run_b, "c": lambda: run_b(kept)}


def measure(model, runs: dict[str, Callable[[], int]], rounds: int) -> dict[str, Any]:
    """Warm-up once each, then ``rounds`` interleaved rounds (order reversed every other round). Each run's
    ratio to (a) is the median over rounds of its time divided by (a)'s time in the same round: the two ran
    within a second of each other, so the machine's drift over the minutes of a benchmark cancels (medians of
    each run's times taken apart do not pair them). Also the medians of wall and CPU time per run."""
    import torch

    cuda = next(model.parameters()).is_cuda
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    names = list(runs)
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    captured = 0
    for name in names:
        model.zero_grad(set_to_none=True)
        runs[name]()
    sync()
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            model.zero_grad(set_to_none=True)
            sync()
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            out = runs[name]()
            sync()
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
            if name == "b":
                captured = out
    ratios = {k: paired_ratio(wall[k], wall["a"]) for k in names}
    return {"wall": {k: statistics.median(v) for k, v in wall.items()},
            "cpu": {k: statistics.median(v) for k, v in cpu.items()},
            "ratio": ratios["b"][0], "cpu_ratio": paired_ratio(cpu["b"], cpu["a"])[0],
            "ratios": {k: r[0] for k, r in ratios.items()}, "intervals": {k: r[1] for k, r in ratios.items()},
            "capture_bytes": captured}


def paired_ratio(times: list[float], baseline: list[float], seed: int = 0) -> tuple[float, tuple[float, float] | None]:
    """The median of the per-round ratios times[i] / baseline[i], and its 95 % bootstrap interval
    (scipy.stats.bootstrap, percentile method; None under 5 rounds, where it means nothing)."""
    import numpy as np
    from scipy.stats import bootstrap

    per_round = np.asarray(times) / np.asarray(baseline)
    median = float(np.median(per_round))
    if per_round.size < 5 or np.ptp(per_round) == 0:
        return median, None
    ci = bootstrap((per_round,), np.median, confidence_level=0.95, n_resamples=2000, method="percentile",
                   random_state=np.random.default_rng(seed)).confidence_interval
    return median, (float(ci.low), float(ci.high))


def report(name: str, model, batch: Batch, heads: list[int], rounds: int, result: dict[str, Any]) -> None:
    n_params = sum(p.numel() for p in model.parameters())
    n_visual = int((batch.inputs["input_ids"] == model.config.image_token_id).sum())
    rows, length = batch.inputs["input_ids"].shape
    print(f"[{name}] {n_params / 1e6:.1f}M params, {rows} rows x {length} tokens ({n_visual // rows} visual, "
          f"{batch.completion.shape[1]} response per row), heads {heads}, final layer, {rounds} rounds")
    labels = {"a": "(a) forward+backward", "b": "(b) + capture + SGUF + weights", "c": "(c) (b), SGUF cached"}
    for key, label in labels.items():
        if key not in result["wall"]:
            continue
        print(f"  {label:32s} wall {result['wall'][key]:9.3f} s   cpu {result['cpu'][key]:9.3f} s")
    cached = f", c/a wall {result['ratios']['c']:.3f}{interval(result, 'c')}" if "c" in result["ratios"] else ""
    print(f"  ratio b/a (median of per-round ratios): wall {result['ratio']:.3f}{interval(result, 'b')}, cpu "
          f"{result['cpu_ratio']:.3f}{cached}; capture held {result['capture_bytes'] / 2**20:.2f} MB")


def interval(result: dict[str, Any], key: str) -> str:
    ci = result["intervals"].get(key)
    return "" if ci is None else f" [95 % CI {ci[0]:.3f}, {ci[1]:.3f}]"


def run_under_job_malloc() -> None:
    """Start this script again under the malloc thresholds the Snakefile gives every job (glibc reads
    ``GLIBC_TUNABLES`` only when a process starts); nothing to do once they are set. With glibc's defaults a
    0.2 s tiny step page-faults ~8,000 times to get back the memory the previous one returned, and that system
    time lands on (a) and (b) unevenly; the jobs never pay it."""
    from kawhi.malloc import set_malloc_tunables

    env = dict(os.environ)
    if set_malloc_tunables(env) != os.environ.get("GLIBC_TUNABLES"):
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds on the tiny model")
    parser.add_argument("--wide-rounds", type=int, default=3, help="interleaved rounds at paper shape")
    parser.add_argument("--wide-layers", type=int, default=2, help="decoder layers of the paper-shape model")
    parser.add_argument("--wide-rows", type=int, default=1, help="rows timed at paper shape")
    parser.add_argument("--wide-completion", type=int, default=1024, help="response tokens per paper-shape row")
    parser.add_argument("--capture-rows", type=int, default=8, help="rows the reported capture size is for")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "config" / "config.yaml"),
                        help="the embedded config whose first model and training step the tiny part times")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cpu (default; hides the GPUs) or cuda (both models on the GPU)")
    parser.add_argument("--malloc", choices=("jobs", "glibc"), default="jobs",
                        help="jobs (default): glibc's malloc thresholds as every workflow job runs under them "
                             "(kawhi/malloc.py); glibc: glibc's own defaults, as a script of one's own gets them")
    args = parser.parse_args()
    if args.malloc == "jobs":
        run_under_job_malloc()
    print(f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')}")
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    device = args.device
    from kawhi.config import load_config

    step = tiny_step(load_config(args.config))
    model, processor = build(step.sizes, image_size=step.image_size, device=device, arch=step.arch)
    batch = make_batch(processor, rows=step.rows, completion_tokens=step.completion_tokens,
                       image_size=step.image_size, generations=step.generations, device=device)
    tiny = measure(model, runners(model, processor, batch, TINY_HEADS, step.settings), args.rounds)
    report("tiny", model, batch, TINY_HEADS, args.rounds, tiny)
    del model

    if device == "cuda":
        torch.cuda.empty_cache()
    model, processor = build(paper_shape_sizes(args.wide_layers), image_size=896, device=device)
    batch = make_batch(processor, rows=args.wide_rows, completion_tokens=args.wide_completion, image_size=896,
                       device=device)
    n_visual = int((batch.inputs["input_ids"] == model.config.image_token_id).sum()) // args.wide_rows
    if n_visual < 1000 or args.wide_completion < 1000:
        print(f"warning: {n_visual} visual and {args.wide_completion} response tokens per row (the issue asks >= 1000)")
    wide_runs = runners(model, processor, batch, PAPER_HEADS, step.settings)
    del wide_runs["c"]  # SGUF is ~0.1 % of a paper-shape step: the cached variant would only add minutes
    wide = measure(model, wide_runs, args.wide_rounds)
    report("paper shape", model, batch, PAPER_HEADS, args.wide_rounds, wide)
    capture_mb = wide["capture_bytes"] / 2**20 * args.capture_rows / args.wide_rows
    print(f"  capture for {args.capture_rows} such rows: {capture_mb:.1f} MB (float32; {capture_mb / 2:.1f} MB in bf16)")
    print(f"tiny_cached_ratio {tiny['ratios']['c']:.3f}")
    print(f"cpu_overhead_ratio {tiny['cpu_ratio']:.3f} cpu_paper_shape_ratio {wide['cpu_ratio']:.3f}")
    print(f"overhead_ratio {tiny['ratio']:.3f} paper_shape_ratio {wide['ratio']:.3f} capture_mb {capture_mb:.1f}")


if __name__ == "__main__":
    main()
