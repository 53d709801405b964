"""What KAWHI costs on top of a policy update, against the naive way of getting attention maps.

On one batch of rollouts (left-padded prompt with one image + right-padded completion, TRL's layout)
it times, interleaved round by round in the same process:

  (a) the policy forward + backward alone (a token log-likelihood loss over the completion);
  (b) the same forward + backward run inside ``QKCapture``, plus ``completion_weights``;
  (c) the naive peer: (a), then an extra no-grad forward in eager attention with
      ``output_attentions=True`` (the only way to get attention maps out of transformers without a
      hook), then the same weight computation (from that extra pass's q/k).

and prints the medians, the weight computation alone, and as last line exactly
``overhead_ratio <b/a> naive_ratio <c/a>``.

    python benchmarks/kawhi_overhead.py [--arch qwen2_5_vl] [--batch 8] [--completion 48] [--rounds 30]
           [--heads 0,5] [--model DIR] [--paragraphs 4] [--threads 1]

Without --model it builds the tiny model (the embedded default sizes) in a temporary directory.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make_batch(processor, batch: int, completion_tokens: int, paragraphs: int, image_size: int = 64):
    """A TRL-style batch: prompts with one image each, completions of ``completion_tokens`` tokens."""
    import numpy as np
    import torch
    from PIL import Image

    from kawhi.data.prompts import build_messages

    rng = np.random.default_rng(0)
    tokenizer = processor.tokenizer
    questions = [f"How many red circles are there in picture {i}?" for i in range(batch)]
    texts = [processor.apply_chat_template(build_messages(q), add_generation_prompt=True, tokenize=False)
             for q in questions]
    images = [Image.fromarray((rng.random((image_size, image_size, 3)) * 255).astype("uint8")) for _ in questions]
    prompt = processor(text=texts, images=images, return_tensors="pt", padding=True, padding_side="left")
    step = "There is a red circle at the top left and another one near the bottom edge."
    body = "\n\n".join([step] * paragraphs) + "\n\nThe answer is \\boxed{2}."
    ids = tokenizer(body, add_special_tokens=False)["input_ids"]
    ids = (ids * (completion_tokens // max(len(ids), 1) + 1))[:completion_tokens]
    completion = torch.tensor([ids] * batch)
    mask = torch.ones_like(completion)
    for b in range(batch):  # ragged completions: row b stops early, then padding
        stop = completion_tokens - 3 * b
        if stop < completion_tokens:
            mask[b, stop:] = 0
            completion[b, stop:] = tokenizer.pad_token_id
    model_inputs = {
        "input_ids": torch.cat([prompt["input_ids"], completion], dim=1),
        "attention_mask": torch.cat([prompt["attention_mask"], mask], dim=1),
        "pixel_values": prompt["pixel_values"],
        "image_grid_thw": prompt["image_grid_thw"],
    }
    if "mm_token_type_ids" in prompt:
        model_inputs["mm_token_type_ids"] = torch.cat([prompt["mm_token_type_ids"], torch.zeros_like(completion)], 1)
    return model_inputs, completion, mask


def policy_loss(model, inputs, completion, mask, **extra):
    import torch

    width = completion.shape[1]
    logits = model(**inputs, logits_to_keep=width + 1, **extra).logits[:, :-1]
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    return -(logp * mask).sum() / mask.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="qwen2_5_vl", choices=["qwen2_5_vl", "qwen3_vl"])
    parser.add_argument("--model", help="model directory (default: build the tiny model)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--completion", type=int, default=48)
    parser.add_argument("--paragraphs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--heads", default="0,5", help="comma-separated vision-critical query heads")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from kawhi.config import KawhiSettings
    from kawhi.method.capture import QKCapture
    from kawhi.method.weights import completion_weights
    from kawhi.models.load import load_model

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            from kawhi.models.tiny import build_tiny_model

            model_dir = build_tiny_model(arch=args.arch, out_dir=Path(tmp) / "model", seed=0)
        model, processor = load_model(model_dir)
    model.train()
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    heads = [int(h) for h in args.heads.split(",")]
    settings = KawhiSettings()
    inputs, completion, mask = make_batch(processor, args.batch, args.completion, args.paragraphs)

    def weights_from(captured):
        return completion_weights(captured, inputs["input_ids"], inputs["image_grid_thw"], mask, completion,
                                  processor.tokenizer, settings, model.config)

    def run_a():
        policy_loss(model, inputs, completion, mask).backward()

    def run_b():
        with QKCapture(model, heads) as cap:
            loss = policy_loss(model, inputs, completion, mask)
        loss.backward()
        weights_from(cap.captured())

    def run_c():
        policy_loss(model, inputs, completion, mask).backward()
        with torch.no_grad(), QKCapture(eager, heads) as cap:
            eager(**inputs, output_attentions=True)
        weights_from(cap.captured())

    with QKCapture(model, heads) as cap, torch.no_grad():
        model(**inputs)
    captured = cap.captured()

    def run_w():
        weights_from(captured)

    wall = {name: [] for name in ("a", "b", "c", "w")}
    cpu = {name: [] for name in ("a", "b", "c", "w")}
    runs = {"a": run_a, "b": run_b, "c": run_c, "w": run_w}
    for fn in runs.values():  # warm-up
        fn()
    for _ in range(args.rounds):
        for name, fn in runs.items():
            model.zero_grad(set_to_none=True)
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    med = {name: statistics.median(values) for name, values in wall.items()}
    med_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    n_params = sum(p.numel() for p in model.parameters())
    seq = inputs["input_ids"].shape[1]
    print(f"model {args.arch} {n_params / 1e6:.2f}M params, batch {args.batch} x {seq} tokens "
          f"(completion {args.completion}), heads {heads}, layers all, rounds {args.rounds}, threads {args.threads}")
    print("                                  wall median   cpu median")
    for key, label in (("a", "(a) forward+backward"), ("b", "(b) + capture + weights"),
                       ("c", "(c) + eager attentions + weights"), ("w", "    weights alone")):
        print(f"{label:33s} {med[key] * 1e3:8.2f} ms   {med_cpu[key] * 1e3:8.2f} ms")
    # CPU time is the steadier measure on a shared machine; the last line is wall clock, as specified
    print(f"cpu_overhead_ratio {med_cpu['b'] / med_cpu['a']:.3f} cpu_naive_ratio {med_cpu['c'] / med_cpu['a']:.3f}")
    print(f"overhead_ratio {med['b'] / med['a']:.3f} naive_ratio {med['c'] / med['a']:.3f}")


if __name__ == "__main__":
    main()
