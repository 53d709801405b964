"""Wall time of the head-ablation sweep against (H+1) independent baseline scoring passes.

A baseline scoring pass is what scoring the unablated model once costs on its own: load the rows,
apply the chat template and the image processor, run the batched forwards, score. The sweep does
the preprocessing once and then H+1 forward passes, so its ratio should be at most ~1 (goal <= 1.2).
Both are measured in the same process, interleaved, on the same model and benchmark.

    python benchmarks/head_sweep.py [--model DIR] [--bench FILE.parquet] [--batch-size 32] [--limit N]

Without --model/--bench it builds the tiny Qwen2.5-VL model and the synthetic MME-style suite in a
temporary directory. The last line is exactly ``sweep_ratio <x>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def default_inputs(workdir: Path, arch: str, n_images: int) -> tuple[Path, Path]:
    from kawhi.data.synthetic import write_suite
    from kawhi.models.tiny import build_tiny_model

    model_dir = workdir / "model"
    build_tiny_model(arch=arch, out_dir=model_dir, seed=0)
    bench = workdir / "mme_synth.parquet"
    write_suite(suite="mme_synth", split="test", n=n_images, seed=0, out=bench)
    return model_dir, bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: build the tiny model)")
    parser.add_argument("--bench", help="MME-style parquet (default: the synthetic suite)")
    parser.add_argument("--arch", default="qwen2_5_vl", help="tiny architecture when building one")
    parser.add_argument("--n-images", type=int, default=50, help="synthetic images when building the suite")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="baseline passes timed before and after")
    parser.add_argument("--no-cache-vision", action="store_true", help="recompute the vision tower every pass")
    args = parser.parse_args()

    import torch

    from kawhi.data.mme import load_mme
    from kawhi.heads.sweep import load_model_and_processor, encode_benchmark, run_sweep, score_model
    from kawhi.method.heads import num_query_heads

    with tempfile.TemporaryDirectory() as tmp:
        if args.model and args.bench:
            model_dir, bench = Path(args.model), Path(args.bench)
        else:
            model_dir, bench = default_inputs(Path(tmp), args.arch, args.n_images)
        model, processor = load_model_and_processor(model_dir)
        device = next(model.parameters()).device
        n_heads = num_query_heads(model)

        def sync() -> None:
            if device.type == "cuda":
                torch.cuda.synchronize()

        def one_baseline_pass() -> tuple[float, float]:
            """(full pass seconds, of which forward-and-score seconds) for one standalone scoring."""
            sync()
            start = time.perf_counter()
            rows = load_mme(bench, limit=args.limit)
            prepared = encode_benchmark(processor, rows, args.batch_size, dtype=model.dtype,
                                         pin_memory=device.type == "cuda")
            sync()
            mid = time.perf_counter()
            score_model(model, prepared)
            sync()
            end = time.perf_counter()
            return end - start, end - mid

        one_baseline_pass()  # warm-up: allocator, kernels, file cache
        timings = [one_baseline_pass() for _ in range(args.repeats)]

        sync()
        start = time.perf_counter()
        rows = load_mme(bench, limit=args.limit)
        prepared = encode_benchmark(processor, rows, args.batch_size, dtype=model.dtype,
                                         pin_memory=device.type == "cuda")
        result = run_sweep(model, prepared, progress=False, cache_vision=not args.no_cache_vision)
        sync()
        sweep_seconds = time.perf_counter() - start

        timings += [one_baseline_pass() for _ in range(args.repeats)]

    full = statistics.median(t[0] for t in timings)
    forward_only = statistics.median(t[1] for t in timings)
    print(f"device {device}, model {model_dir}, benchmark {bench}: {len(prepared)} questions, "
          f"{len(prepared.batches)} batches of <= {args.batch_size}, H = {n_heads} query heads, "
          f"vision replay {'off' if args.no_cache_vision else 'on'}")
    print(f"baseline scoring pass (load + preprocess + forward + score): {full:.3f} s (median of {len(timings)})")
    print(f"  of which forward + score:                                 {forward_only:.3f} s")
    print(f"sweep (preprocess once + {n_heads + 1} passes):                    {sweep_seconds:.3f} s")
    print(f"(H+1) x baseline pass:                                       {(n_heads + 1) * full:.3f} s")
    print(f"sweep / ((H+1) x forward-only pass): {sweep_seconds / ((n_heads + 1) * forward_only):.3f}")
    print(f"baseline MME total {result.baseline['total']:.1f}; largest drop {max(result.drops):.1f}")
    print(f"sweep_ratio {sweep_seconds / ((n_heads + 1) * full):.3f}")


if __name__ == "__main__":
    main()
