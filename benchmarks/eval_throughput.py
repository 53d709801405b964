"""Evaluation throughput: lm-eval generation batched against one prompt at a time, on the tiny model.

Both runs go through ``kawhi.eval.runner.evaluate`` on the same synthetic suite with greedy decoding,
so they see the same prompts; the script checks that they also give the same responses, then prints
the wall times side by side. Last line: ``batch_speedup <x>`` (one-by-one time / batched time).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eval_throughput.py [--n 32] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def timed_eval(model_dir: Path, data: Path, out: Path, batch_size: int, settings: dict) -> tuple[float, list[str]]:
    from kawhi.eval.runner import EvalSettings, build_lm, evaluate, samples_path

    s = EvalSettings.from_dict({**settings, "batch_size": batch_size})
    lm = build_lm(model_dir, s.backend, s.batch_size, s.max_new_tokens)  # loading is not timed
    start = time.perf_counter()
    evaluate(model_dir, data, out, s, lm=lm)
    elapsed = time.perf_counter() - start
    responses = [json.loads(line)["response"] for line in samples_path(out).read_text().splitlines()]
    return elapsed, responses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model directory (default: build the tiny model)")
    parser.add_argument("--arch", default="qwen2_5_vl", help="tiny model architecture when --model is absent")
    parser.add_argument("--suite", default="shapes_count")
    parser.add_argument("--n", type=int, default=32, help="rows evaluated")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()

    import torch

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="eval-throughput-") as tmp:
        tmp = Path(tmp)
        model_dir = args.model
        if model_dir is None:
            from kawhi.models.tiny import build_tiny_model

            model_dir = tmp / "model"
            build_tiny_model(arch=args.arch, out_dir=model_dir, seed=0)
        from kawhi.data.synthetic import write_suite

        data = tmp / "test.parquet"
        write_suite(suite=args.suite, split="test", n=args.n, seed=0, out=data)
        settings = {"benchmark": args.suite, "max_new_tokens": args.max_new_tokens, "seed": 0}

        # One-by-one first and batched second would favour the second with warm caches; warm up once.
        timed_eval(model_dir, data, tmp / "warmup.json", args.batch_size, {**settings, "limit": 2})
        single_s, single = timed_eval(model_dir, data, tmp / "single.json", 1, settings)
        batched_s, batched = timed_eval(model_dir, data, tmp / "batched.json", args.batch_size, settings)

    same = sum(a == b for a, b in zip(single, batched))
    print(f"device {'cuda' if torch.cuda.is_available() else 'cpu'} threads {torch.get_num_threads()}")
    print(f"rows {len(single)} max_new_tokens {args.max_new_tokens}")
    print(f"one_by_one_s {single_s:.3f} ({len(single) / single_s:.2f} rows/s)")
    print(f"batched_s {batched_s:.3f} ({len(batched) / batched_s:.2f} rows/s, batch {args.batch_size})")
    print(f"same_outputs {same}/{len(single)}")
    print(f"batch_speedup {single_s / batched_s:.2f}")


if __name__ == "__main__":
    main()
