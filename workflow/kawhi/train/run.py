"""One RL training run: (policy, algorithm, variant, heads, data) -> a run directory.

Layout of ``out`` (``results/train/{model}/{algo}/{variant}``):

- ``final/``          the trained model + processor (written atomically at the end);
- ``metrics.jsonl``   one JSON per logged step (reward mean/std, clip ratios, KL, lengths, dynamic-sampling
                      counts, KAWHI weight stats);
- ``checkpoints/``    TRL/transformers checkpoints every ``training.save_steps`` plus ``fingerprint.json``;
- ``gallery/``        a few KAWHI rollouts of the last step (PNG + JSON);
- ``done.json``       written last: steps, wall time, provenance. It is the rule's only declared output.

Resume: a run started again with the same command and inputs continues from its newest complete
checkpoint. Snakemake deletes only the declared output (``done.json``) of a failed job, so the
checkpoints survive a crash and the rerun continues instead of restarting from step 0. Checkpoints
from different settings or inputs (fingerprint mismatch) are discarded, never resumed. A run whose newest
checkpoint is already at ``max_steps`` (killed after it, before ``done.json``) is not trained further:
``final/`` is written from that checkpoint. Temporaries of a killed run are removed on the next start,
``training.save_total_limit`` rotates checkpoints, and a full disk is reported with its directory
(kawhi.train.faults).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from kawhi.atomic import append_jsonl, atomic_path, write_json
from kawhi.config import KawhiSettings, settings_json
from kawhi.provenance import provenance
from kawhi.train.faults import checkpoint_step, clean_leftovers, disk_full_errors

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("question", "answer")
IMAGE_COLUMNS = ("image", "images")


# ---- inputs -----------------------------------------------------------------------------------------

def read_heads(path: str | Path | None) -> list[int]:
    """The vision-critical heads of ``critical_heads.json`` (``{"heads": [...]}``); [] without a file."""
    if path is None:
        return []
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read critical heads from {path}: {err}") from err
    heads = data.get("heads") if isinstance(data, dict) else None
    if not isinstance(heads, list) or not all(isinstance(h, int) for h in heads):
        raise ValueError(f"{path}: expected {{\"heads\": [int, ...]}}, got {str(data)[:200]}")
    return heads


def load_rl_dataset(files: Sequence[str | Path], delimiter_hint: str | None = None, extra_columns: Sequence[str] = ()):
    """RL prompts from local parquet files: ``prompt`` (chat messages), ``image``/``images``, ``answer``, ``options``.

    Every file must have ``question`` and ``answer`` and an image column; an ``options`` column (list,
    possibly empty) marks multiple choice. Errors name the file and the missing column; a file that is not
    readable parquet, or rows with a null/NaN answer or an undecodable image, are refused naming the
    file and the row ids.
    """
    import datasets

    from kawhi.data.prompts import build_messages
    from kawhi.data.rows import BadRowError, describe_bad_rows, find_bad_rows, read_parquet

    if not files:
        raise ValueError("no training data files given (--data)")
    parts = []
    for file in files:
        file = Path(file)
        if not file.exists():
            raise FileNotFoundError(f"training data file {file} does not exist")
        ds = read_parquet(file, "training data")
        missing = [c for c in (*REQUIRED_COLUMNS, *extra_columns) if c not in ds.column_names]
        image_col = next((c for c in IMAGE_COLUMNS if c in ds.column_names), None)
        if missing or image_col is None:
            raise ValueError(f"{file}: missing column(s) {missing + ([] if image_col else ['image'])}; "
                             f"has {ds.column_names}")
        bad = find_bad_rows(ds, image_col)
        if bad:  # a null answer would train on the string "None"; a broken image would stop the run later
            raise BadRowError(describe_bad_rows(file, bad, "fix or rebuild the training data"))
        if image_col == "image":
            ds = ds.map(lambda row: {"images": [row["image"]]}, remove_columns=["image"])
        has_options = "options" in ds.column_names
        yes_no = "yes_no" in ds.column_names

        def to_prompt(row: dict[str, Any]) -> dict[str, Any]:
            options = row["options"] if has_options and row["options"] else None
            return {"prompt": build_messages(row["question"], options, n_images=len(row["images"]),
                                             yes_no=bool(row["yes_no"]) if yes_no else False),
                    "answer": str(row["answer"]),
                    "options": list(options) if options else []}

        keep = {"images", "prompt", "answer", "options", *extra_columns}
        ds = ds.map(to_prompt, remove_columns=[c for c in ds.column_names if c not in keep])
        parts.append(ds.select_columns(["prompt", "images", "answer", "options", *extra_columns]))
    return datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def load_policy(model_dir: str | Path):
    """(model, processor) of the starting policy via the models stage's loader, processor padded on the left.

    TRL left-pads prompts and, when it loads a processor itself, loads it with ``padding_side="left"``;
    it relies on that when it re-runs the processor for ``mm_token_type_ids``. A processor padded on the
    right would misalign those ids with the prompt tokens whenever prompts differ in length (the
    Qwen-VL M-RoPE index then fails with a shape mismatch), so the side is set here.
    """
    from kawhi.models.load import load_model

    model, processor = load_model(model_dir)
    tokenizer = getattr(processor, "tokenizer", processor)
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    return model, processor


# ---- resume -----------------------------------------------------------------------------------------

def run_fingerprint(settings: dict[str, Any], model_dir: str | Path, heads: Sequence[int],
                    data_files: Sequence[str | Path]) -> str:
    """What a checkpoint must agree with to be resumed: settings, heads, and the input files' identity."""
    def identity(path: str | Path) -> list[Any]:
        path = Path(path)
        target = path / "config.json" if path.is_dir() else path
        stat = target.stat() if target.exists() else None
        return [str(path.resolve()), stat.st_size if stat else None, stat.st_mtime_ns if stat else None]

    blob = json.dumps({"settings": settings_json(settings), "heads": list(heads), "model": identity(model_dir),
                       "data": [identity(f) for f in data_files]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def complete_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Checkpoints whose trainer state was written (transformers writes it last), oldest first."""
    found = []
    if not checkpoint_dir.is_dir():
        return found
    for path in checkpoint_dir.glob("checkpoint-*"):
        state = path / "trainer_state.json"
        try:
            step = int(path.name.split("-")[-1])
            json.loads(state.read_text())
        except (ValueError, OSError):
            log.warning("ignoring incomplete checkpoint %s", path)
            continue
        found.append((step, path))
    return [p for _, p in sorted(found)]


def prepare_resume(out: Path, fingerprint: str) -> Path | None:
    """The checkpoint to resume from (or None), after discarding checkpoints of another configuration.

    Also trims ``metrics.jsonl`` to the resumed step so the log has each step once.
    """
    checkpoint_dir = out / "checkpoints"
    stamp = checkpoint_dir / "fingerprint.json"
    if checkpoint_dir.exists():
        old = json.loads(stamp.read_text()).get("fingerprint") if stamp.exists() else None
        if old != fingerprint:
            log.warning("discarding checkpoints in %s: they belong to another configuration or input", checkpoint_dir)
            shutil.rmtree(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    write_json(stamp, {"fingerprint": fingerprint})
    ready = complete_checkpoints(checkpoint_dir)
    resume = ready[-1] if ready else None
    resume_step = int(resume.name.split("-")[-1]) if resume else 0
    _trim_metrics(out / "metrics.jsonl", resume_step)
    return resume


def _trim_metrics(path: Path, last_step: int) -> None:
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        if int(record.get("step", 0)) <= last_step:
            keep.append(line)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in keep))


# ---- the run ----------------------------------------------------------------------------------------

def _metrics_callback(path: Path):
    from transformers import TrainerCallback

    class MetricsToJsonl(TrainerCallback):
        """Append every training log (one per ``logging_steps``) to ``metrics.jsonl``, flushed."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            if "train_runtime" in logs:  # the end-of-training summary, not a step
                return
            append_jsonl(path, {"step": int(state.global_step), **{k: v for k, v in logs.items()}})

    return MetricsToJsonl()


def train_run(model_dir: str | Path, settings: dict[str, Any], heads_file: str | Path | None,
              data_files: Sequence[str | Path], out: str | Path, gallery_size: int | None = None) -> dict[str, Any]:
    """Train one (model, algo, variant) run into ``out``; return the done.json record."""
    from transformers import set_seed

    from kawhi.train.lm_head import compact_lm_head_on_cpu
    from kawhi.train.presets import algorithm_from_settings, build_grpo_config
    from kawhi.train.rewards import build_reward_functions
    from kawhi.train.trainer import KawhiGRPOTrainer

    compact_lm_head_on_cpu()  # TRL scores every position on CPU otherwise (kawhi.train.lm_head)
    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kawhi = KawhiSettings.from_dict(settings["kawhi"])
    needs_heads = kawhi.enabled and kawhi.heads == "critical"  # `heads: all` reads every query head
    heads = read_heads(heads_file) if needs_heads else []
    if needs_heads and not heads:
        raise ValueError(f"variant '{settings.get('variant')}' enables KAWHI but {heads_file} lists no critical heads")
    algo = algorithm_from_settings(settings)
    if gallery_size is None:
        gallery_size = int(settings["training"].get("gallery_size", 4))
    set_seed(int(settings["seed"]))

    # baselines (kawhi.train.baselines): Step-GRPO reads its key-step column, VPPO hooks the trainer
    step_grpo = algo.step_grpo
    vppo = None
    if algo.vppo is not None:
        from kawhi.train.baselines.vppo import VPPOSettings

        vppo = VPPOSettings(**algo.vppo)
    reward_funcs, reward_weights = build_reward_functions(settings["training"], settings["algorithm"],
                                                         kawhi.delimiter)
    args = build_grpo_config(settings, out / "checkpoints", reward_weights=reward_weights)
    is_main = args.process_index == 0
    # Under a multi-process launch the main process removes a killed run's leftovers, discards stale
    # checkpoints and fills the datasets cache first; the others then find all of it ready.
    with args.main_process_first(local=False, desc="resume check and dataset"):
        if is_main:
            clean_leftovers(out)
        resume = prepare_resume(out, run_fingerprint(settings, model_dir, heads, data_files))
        dataset = load_rl_dataset(data_files,
                                  extra_columns=[step_grpo.get("column", "key_steps")] if step_grpo else [])
    if resume is not None:
        log.info("resuming from %s", resume)
    if resume is not None and checkpoint_step(resume) >= int(settings["training"]["max_steps"]):
        return _finish_from_checkpoint(resume, settings, algo.name, heads, out, started, write=is_main)
    model, processor = load_policy(model_dir)
    trainer = KawhiGRPOTrainer(
        model=model, processing_class=processor, reward_funcs=reward_funcs, args=args, train_dataset=dataset,
        callbacks=[_metrics_callback(out / "metrics.jsonl")], kawhi=kawhi, heads=heads,
        dynamic_sampling=algo.dynamic_sampling, dynamic_sampling_max_tries=algo.dynamic_sampling_max_tries,
        gallery_size=gallery_size if kawhi.enabled else 0, vppo=vppo,
    )
    with disk_full_errors(out / "checkpoints", "training (writing checkpoints)"):
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    with disk_full_errors(out, "saving the final model"):
        _save_final(trainer, processor, out / "final")
    if trainer.gallery and trainer.is_world_process_zero():
        from kawhi.train.gallery import write_gallery

        image_token = getattr(processor, "image_token", None)
        write_gallery(out / "gallery", trainer.gallery, getattr(processor, "image_processor", None), image_token)

    record = _done_record(settings, algo.name, out, started, steps=int(trainer.state.global_step),
                          resumed_from=resume.name if resume else None,
                          train_runtime_s=float(result.metrics.get("train_runtime", 0.0)),
                          heads=list(trainer.kawhi_heads), with_gallery=bool(trainer.gallery))
    if trainer.is_world_process_zero():
        write_json(out / "done.json", record)
    return record


def _done_record(settings: dict[str, Any], algo_name: str, out: Path, started: float, *, steps: int,
                 resumed_from: str | None, train_runtime_s: float, heads: list[int],
                 with_gallery: bool) -> dict[str, Any]:
    """What ``done.json`` says of a finished run (trained to the end, or finished from its last checkpoint)."""
    import torch

    return {
        "model": settings.get("model"),
        "algorithm": algo_name,
        "variant": settings.get("variant"),
        "steps": steps,
        "max_steps": int(settings["training"]["max_steps"]),
        "resumed_from": resumed_from,
        "wall_time_s": round(time.time() - started, 3),
        "train_runtime_s": train_runtime_s,
        "heads": heads,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "metrics_file": "metrics.jsonl",
        "final_dir": "final",
        "gallery": sorted(p.name for p in (out / "gallery").glob("*.json")) if with_gallery else [],
        "provenance": provenance(settings),
    }


def _finish_from_checkpoint(checkpoint: Path, settings: dict[str, Any], algo_name: str, heads: list[int],
                            out: Path, started: float, write: bool = True) -> dict[str, Any]:
    """Write ``final/`` and ``done.json`` of a run whose training ended at ``checkpoint`` (= max_steps).

    Resuming such a checkpoint with transformers would train one more step; its weights are instead the
    run's final weights, loaded and saved as the trained policy is (float32, the processor the trainer
    stored with the checkpoint, padded on the left). A gallery written before the kill is kept. Only
    the main process writes (``write``); the others return the same record.
    """
    log.info("%s is at max_steps: writing final/ from it instead of training further", checkpoint)
    if write:
        model, processor = load_policy(checkpoint)
        with disk_full_errors(out, "saving the final model"), atomic_path(out / "final") as tmp:
            model.save_pretrained(str(tmp))
            processor.save_pretrained(str(tmp))
    record = _done_record(settings, algo_name, out, started, steps=checkpoint_step(checkpoint),
                          resumed_from=checkpoint.name, train_runtime_s=0.0, heads=heads, with_gallery=True)
    if write:
        write_json(out / "done.json", record)
    return record


def _save_final(trainer, processor, final: Path) -> None:
    """The trained model and processor into ``final``, atomically, written by the main process alone.

    Every process calls ``save_model``: under FSDP or ZeRO-3 it gathers the sharded weights collectively,
    and only the main process writes (transformers' ``should_save``).
    """
    if trainer.is_world_process_zero():
        with atomic_path(final) as tmp:
            trainer.save_model(str(tmp))
            processor.save_pretrained(str(tmp))
    else:
        with tempfile.TemporaryDirectory() as scratch:
            trainer.save_model(scratch)

