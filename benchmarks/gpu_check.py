"""One call on a lent GPU machine (one H200, no network, its own torch and transformers, no TRL/lm-eval/vLLM).

    python benchmarks/gpu_check.py            # on the GPU machine: under 8 minutes, one JSON line on stdout
    python benchmarks/gpu_check.py --dry      # CPU dry run (the test suite runs it): same sections, tiny sizes

What it does, each section in its own subprocess with its own time limit (a failure or timeout is
recorded and the next section runs):

0. ``setup``: if trl, accelerate, datasets, ... are missing, installs the wheels of benchmarks/wheels/
   (git-ignored; fill it as benchmarks/wheels.txt says) with ``pip install --no-index --no-deps --target``
   into a temporary folder and puts that folder first on PYTHONPATH. torch and transformers are the
   machine's own; ``kawhi`` comes from this checkout's workflow/ (not installed).
1. ``train_<algo>``: one optimiser step of ``kawhi train`` for grpo, dapo and gspo with KAWHI on the
   tiny Qwen2.5-VL model, bf16 on CUDA (``training.bf16``; float32 on CPU in dry mode).
2. ``capture``: the q/k that ``QKCapture`` records in an sdpa forward reproduce the model's eager
   attention probabilities over the image tokens, in float32 (tolerance FP32_ATOL, METHOD.md's
   invariant) and in bf16 (tolerance BF16_ATOL: bf16 keeps 8 mantissa bits, and the eager and sdpa
   kernels round differently, so probabilities agree to ~1e-2, not 1e-5).
3. ``kawhi_overhead``: benchmarks/kawhi_overhead.py (owned by the method work) at Qwen2.5-VL-7B shapes;
   its arguments are ``OVERHEAD_GPU_ARGS`` (override with KAWHI_OVERHEAD_ARGS). Its last line
   ``overhead_ratio <x> paper_shape_ratio <y> capture_mb <z>`` is parsed. Absent script: status "absent" (not a failure in
   dry mode).
4. ``head_sweep``: benchmarks/head_sweep.py; its last line ``sweep_ratio <x>`` is parsed.

Output, one JSON line (the only line on stdout)::

    {"mode": "gpu"|"dry", "ok": bool, "wall_s": float, "device": str, "versions": {...},
     "sections": {"<name>": {"status": "ok"|"failed"|"timeout"|"absent"|"skipped", "wall_s": float,
                             ...section fields..., "error": str (failed/timeout: the log's tail)}}}

Section fields: train_<algo>: ``steps``, ``step_time_s``, ``loss``, ``dtype``; capture: ``fp32_max_abs``,
``bf16_max_abs``, ``fp32_atol``, ``bf16_atol``; kawhi_overhead: ``overhead_ratio``, ``paper_shape_ratio``, ``capture_mb``;
head_sweep: ``sweep_ratio``. ``ok`` is true when no section failed or timed out.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO / "benchmarks" / "wheels"
NEEDED = ("trl", "accelerate", "datasets", "math_verify", "scipy", "skimage", "jsonschema", "yaml")
ALGOS = ("grpo", "dapo", "gspo")
FP32_ATOL = 1e-5
BF16_ATOL = 2e-2
# Qwen2.5-VL-7B text decoder: width 3584, 28 query heads, 4 key/value heads; 4 layers keep it in time.
# kawhi_overhead.py builds Qwen2.5-VL-7B's widths itself (3584 wide, 28 query / 4 kv heads); 4 layers and
# 1,024 visual + 1,024 response tokens per row keep it in time.
OVERHEAD_GPU_ARGS = ["--device", "cuda", "--rounds", "10", "--wide-layers", "4", "--wide-rows", "2",
                     "--wide-rounds", "5"]
OVERHEAD_DRY_ARGS = ["--device", "cpu", "--rounds", "2", "--wide-layers", "1", "--wide-rounds", "1",
                     "--wide-completion", "64"]
LIMITS_S = {"gpu": {"train": 70, "capture": 60, "kawhi_overhead": 150, "head_sweep": 90},
            "dry": {"train": 120, "capture": 90, "kawhi_overhead": 150, "head_sweep": 150}}


# ---- sections (run in a child process: ``gpu_check.py --section NAME``) --------------------------------

def _workdir_model(work: Path) -> Path:
    from kawhi.models.tiny import build_tiny_model

    model = work / "model"
    if not model.exists():
        build_tiny_model(arch="qwen2_5_vl", out_dir=model, seed=0)
    return model


def section_train(algo: str, dry: bool, work: Path) -> dict[str, Any]:
    from kawhi.config import load_config, train_settings
    from kawhi.data.synthetic import write_suite
    from kawhi.train.run import train_run

    model = _workdir_model(work)
    data = work / "train.parquet"
    if not data.exists():
        write_suite(suite="shapes_count", split="train", n=8, seed=0, out=data)
    settings = train_settings(load_config(REPO / "config" / "config.yaml"), "qwen25vl-tiny", algo, "kawhi")
    # 16 new tokens: DAPO's overlong buffer (8) must fit inside the completion length
    settings["training"].update({"max_steps": 1, "per_device_train_batch_size": 4, "num_generations": 2,
                                 "max_completion_length": 16, "save_steps": 1, "gallery_size": 0,
                                 "distributed": "none", "bf16": not dry})
    if algo == "gspo":
        settings["algorithm"]["beta"] = 0.0
    record = train_run(model, settings, str(_heads(work)), [str(data)], work / f"run-{algo}")
    metrics = [json.loads(line) for line in (work / f"run-{algo}" / "metrics.jsonl").read_text().splitlines()]
    return {"steps": record["steps"], "step_time_s": metrics[-1].get("step_time"), "loss": metrics[-1].get("loss"),
            "dtype": "bfloat16" if not dry else "float32"}


def _heads(work: Path) -> Path:
    heads = work / "critical_heads.json"
    heads.write_text(json.dumps({"heads": [0, 1]}))
    return heads


def section_capture(dry: bool, work: Path) -> dict[str, Any]:
    import copy

    import torch

    sys.path.insert(0, str(REPO))
    from kawhi.method.capture import QKCapture
    from kawhi.method.layout import visual_layout
    from tests.test_method_tiny import make_batch, tiny_vl_model

    device = "cpu" if dry else "cuda"
    out: dict[str, Any] = {"fp32_atol": FP32_ATOL, "bf16_atol": BF16_ATOL}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        model = tiny_vl_model("qwen2_5_vl", attn="sdpa").to(device=device, dtype=dtype)
        batch = {k: v.to(device) for k, v in make_batch(model).items()}
        batch["pixel_values"] = batch["pixel_values"].to(dtype)
        heads = [0, model.config.get_text_config().num_attention_heads - 1]
        config = model.config
        layouts = visual_layout(batch["input_ids"].cpu(), batch["image_grid_thw"].cpu(), config.image_token_id,
                                config.vision_config.spatial_merge_size)
        # queries: every position after the row's image; keys: the visual tokens (what KAWHI reads)
        query_mask = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
        for b, layout in enumerate(layouts):
            query_mask[b, int(layout.visual_positions[-1]) + 1:] = True
        key_mask = batch["input_ids"] == config.image_token_id
        with torch.no_grad(), QKCapture(model, heads=heads, layers=[-1], query_mask=query_mask,
                                        key_mask=key_mask) as cap:
            model(**batch)
        captured = cap.captured()
        final = captured.layers[0]
        eager = copy.deepcopy(model)
        eager.set_attn_implementation("eager")
        with torch.no_grad():
            probabilities = eager(**batch, output_attentions=True).attentions[final]
        # eager exposes softmax(logits): centred log-probabilities are the logits up to a per-row constant
        centre = lambda x: x - x.mean(dim=-1, keepdim=True)  # noqa: E731
        worst = 0.0
        for b in range(batch["input_ids"].shape[0]):
            row = captured.row(b)
            ours = torch.einsum("qhd,khd->hqk", row.q.float(), row.k.float()) * captured.scaling
            theirs = probabilities[b][heads][:, row.q_positions][:, :, row.k_positions].float().log()
            worst = max(worst, float((centre(ours) - centre(theirs)).abs().max()))
        out[f"{name}_max_abs"] = worst
    if out["fp32_max_abs"] > FP32_ATOL or out["bf16_max_abs"] > BF16_ATOL:
        raise AssertionError(f"capture differs from eager attention: {out}")
    return out


def _script(path: Path, args: list[str], pattern: str, keys: tuple[str, ...], limit: float) -> dict[str, Any]:
    """Run a benchmark script by path; parse its last line."""
    if not path.exists():
        return {"status": "absent"}
    proc = subprocess.run([sys.executable, str(path), *args], cwd=REPO, capture_output=True, text=True, timeout=limit)
    if proc.returncode != 0:
        raise RuntimeError(f"{path.name} exited {proc.returncode}: {(proc.stdout + proc.stderr)[-1500:]}")
    lines = proc.stdout.strip().splitlines()
    match = re.fullmatch(pattern, lines[-1].strip()) if lines else None
    if match is None:
        raise RuntimeError(f"{path.name}: last line {lines[-1:]!r} is not '{pattern}'")
    return {key: float(value) for key, value in zip(keys, match.groups())}


def run_section(name: str, dry: bool, work: Path) -> dict[str, Any]:
    mode = "dry" if dry else "gpu"
    if name.startswith("train_"):
        return section_train(name.removeprefix("train_"), dry, work)
    if name == "capture":
        return section_capture(dry, work)
    if name == "kawhi_overhead":
        override = os.environ.get("KAWHI_OVERHEAD_ARGS")
        args = override.split() if override else (OVERHEAD_DRY_ARGS if dry else OVERHEAD_GPU_ARGS)
        return _script(REPO / "benchmarks" / "kawhi_overhead.py", args,
                       r"overhead_ratio (\S+) paper_shape_ratio (\S+) capture_mb (\S+)", ("overhead_ratio", "paper_shape_ratio", "capture_mb"),
                       LIMITS_S[mode]["kawhi_overhead"] - 10)
    if name == "head_sweep":
        args = ["--n-images", "4", "--batch-size", "4", "--repeats", "1"] if dry else ["--n-images", "50"]
        return _script(REPO / "benchmarks" / "head_sweep.py", args, r"sweep_ratio (\S+)", ("sweep_ratio",),
                       LIMITS_S[mode]["head_sweep"] - 10)
    raise ValueError(f"unknown section '{name}'")


# ---- the orchestrator --------------------------------------------------------------------------------

def prepare_environment(scratch: Path) -> dict[str, str]:
    """PYTHONPATH for the sections: the wheels' target (if anything was missing), then this checkout."""
    paths = [str(REPO / "workflow")]
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        wanted = REPO / "benchmarks" / "wheels.txt"
        if not WHEELS.is_dir() or not any(WHEELS.glob("*.whl")):
            raise SystemExit(f"missing {missing} and no wheels in {WHEELS}: fill it as {wanted} says")
        target = scratch / "site"
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                        "--find-links", str(WHEELS), "--target", str(target), "-r", str(wanted)], check=True)
        paths.insert(0, str(target))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="CPU dry run at tiny sizes")
    parser.add_argument("--section", help=argparse.SUPPRESS)  # internal: run one section, print its JSON
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="+", help="run only these sections (train_grpo, capture, ...)")
    args = parser.parse_args(argv)
    if args.section:
        print(json.dumps(run_section(args.section, args.dry, args.work)))
        return 0

    start = time.time()
    mode = "dry" if args.dry else "gpu"
    sections = [f"train_{a}" for a in ALGOS] + ["capture", "kawhi_overhead", "head_sweep"]
    sections = [s for s in sections if not args.only or s in args.only]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="kawhi-gpu-check-") as scratch:
        env = prepare_environment(Path(scratch))
        probe = subprocess.run([sys.executable, "-c", "import json, torch, transformers, trl; print(json.dumps("
                                "{'torch': torch.__version__, 'transformers': transformers.__version__, "
                                "'trl': trl.__version__, 'cuda': torch.cuda.is_available(), 'device': "
                                "torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'}))"],
                               env=env, capture_output=True, text=True, check=True)
        versions = json.loads(probe.stdout)
        if not args.dry and not versions["cuda"]:
            raise SystemExit("no CUDA device: run with --dry on CPU")
        work = Path(scratch) / "work"
        work.mkdir()
        for name in sections:
            limit = LIMITS_S[mode]["train" if name.startswith("train_") else name]
            began = time.time()
            try:
                proc = subprocess.run([sys.executable, __file__, "--section", name, "--work", str(work),
                                       *(["--dry"] if args.dry else [])], env=env, cwd=REPO, capture_output=True,
                                      text=True, timeout=limit)
                if proc.returncode == 0:
                    result = {"status": "ok", **json.loads(proc.stdout.strip().splitlines()[-1])}
                else:
                    result = {"status": "failed", "error": (proc.stdout + proc.stderr)[-1500:]}
            except subprocess.TimeoutExpired as err:
                result = {"status": "timeout", "error": f"over {limit} s: " + str(err.stderr or "")[-1000:]}
            result["wall_s"] = round(time.time() - began, 2)
            results[name] = result
    ok = all(r["status"] not in ("failed", "timeout") for r in results.values())
    print(json.dumps({"mode": mode, "ok": ok, "wall_s": round(time.time() - start, 2), "device": versions["device"],
                      "versions": {k: versions[k] for k in ("torch", "transformers", "trl")}, "sections": results}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
