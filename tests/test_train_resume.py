"""A run killed with SIGKILL and started again with the same command resumes and ends with the same steps."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kawhi.config import load_config, settings_json, train_settings
from kawhi.train.run import complete_checkpoints, prepare_resume

MAX_STEPS = 12


def _command(model_dir, data, heads, out, settings):
    return [sys.executable, "-m", "kawhi.cli", "train", "--model", str(model_dir), "--algo", "grpo",
            "--variant", "kawhi", "--heads", str(heads), "--data", str(data), "--out", str(out),
            "--settings", settings_json(settings)]


@pytest.mark.slow  # two process start-ups and a dozen checkpoints: ~45 s on a shared CPU
def test_sigkill_then_resume(repo_root, tiny_model_factory, suite_factory, tmp_path):
    config = load_config(repo_root / "config" / "config.yaml")
    settings = train_settings(config, "qwen25vl-tiny", "grpo", "kawhi")
    settings["training"].update({"max_steps": MAX_STEPS, "per_device_train_batch_size": 4, "num_generations": 2,
                                 "max_completion_length": 8, "save_steps": 2, "gallery_size": 1})
    settings["algorithm"]["overlong_buffer"] = 2  # the embedded grpo punishes overlong answers: fit 8 tokens
    heads = tmp_path / "critical_heads.json"
    heads.write_text(json.dumps({"heads": [0, 1]}))
    out = tmp_path / "run"
    cmd = _command(tiny_model_factory("qwen2_5_vl"), suite_factory("shapes_count", "train", n=8), heads, out,
                   settings)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

    first = subprocess.Popen(cmd, cwd=repo_root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and first.poll() is None:
        if complete_checkpoints(out / "checkpoints"):
            break
        time.sleep(0.05)
    assert first.poll() is None, "the run ended before it could be killed: " + first.stderr.read().decode()[-2000:]
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    assert not (out / "done.json").exists()
    killed_at = int(complete_checkpoints(out / "checkpoints")[-1].name.split("-")[-1])
    assert killed_at < MAX_STEPS

    second = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stderr[-3000:]
    done = json.loads((out / "done.json").read_text())
    assert done["steps"] == MAX_STEPS
    assert done["resumed_from"] is not None and int(done["resumed_from"].split("-")[-1]) >= killed_at
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, MAX_STEPS + 1))  # each step logged once, none lost, none repeated


def test_checkpoints_of_other_settings_are_not_resumed(tmp_path):
    ckpt = tmp_path / "checkpoints" / "checkpoint-4"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoints" / "fingerprint.json").write_text(json.dumps({"fingerprint": "old"}))
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"step": s}) + "\n" for s in range(1, 7)))
    assert prepare_resume(tmp_path, "old") == ckpt
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4  # trimmed to the checkpoint
    assert prepare_resume(tmp_path, "new") is None
    assert not ckpt.exists()
    assert (tmp_path / "metrics.jsonl").read_text() == ""


def test_incomplete_checkpoint_is_skipped(tmp_path):
    good = tmp_path / "checkpoint-2"
    good.mkdir()
    (good / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-4").mkdir()  # killed while saving: no trainer state yet
    torn = tmp_path / "checkpoint-6"
    torn.mkdir()
    (torn / "trainer_state.json").write_text('{"global_st')
    assert complete_checkpoints(tmp_path) == [good]


@pytest.mark.parametrize("bad", ["missing", "nocolumns"])
def test_bad_training_data_named(tmp_path, bad):
    import pandas as pd

    from kawhi.train.run import load_rl_dataset

    path = tmp_path / "train.parquet"
    if bad == "nocolumns":
        pd.DataFrame({"question": ["q"]}).to_parquet(path)
        with pytest.raises(ValueError, match="train.parquet: missing column"):
            load_rl_dataset([path])
    else:
        with pytest.raises(FileNotFoundError, match="train.parquet"):
            load_rl_dataset([path])


def test_epoch_seeded_sampler_order_depends_only_on_seed_and_epoch():
    """A run resumed at epoch 2 draws epoch 2's order as the uninterrupted run did (TRL's sampler did not)."""
    from trl.trainer.utils import RepeatSampler

    from kawhi.train.resume import EpochSeededRepeatSampler

    def sampler(cls):
        return cls(list(range(16)), mini_repeat_count=2, batch_size=4, repeat_count=1, shuffle=True, seed=3)

    uninterrupted = sampler(EpochSeededRepeatSampler)
    orders = []
    for epoch in range(3):
        uninterrupted.set_epoch(epoch)
        orders.append(list(uninterrupted))
    resumed = sampler(EpochSeededRepeatSampler)
    resumed.set_epoch(2)
    assert list(resumed) == orders[2] and orders[2] != orders[1]
    stock = sampler(RepeatSampler)
    list(stock), list(stock)
    assert list(stock) != list(sampler(RepeatSampler))  # the fault: epoch 2 depends on the draws before it
