"""Faults around a training run: a kill after the last checkpoint but before done.json, leftovers of a
kill during the final save, checkpoint rotation, and a full disk while saving."""

import errno
import json
import shutil

import pytest

from kawhi.config import load_config, train_settings
from kawhi.train.run import train_run

MAX_STEPS = 3


@pytest.fixture
def tiny_run(repo_root, tiny_model_factory, suite_factory, tmp_path):
    config = load_config(repo_root / "config" / "config.yaml")
    settings = train_settings(config, "qwen25vl-tiny", "grpo", "kawhi")
    settings["training"].update({"max_steps": MAX_STEPS, "per_device_train_batch_size": 4, "num_generations": 2,
                                 "max_completion_length": 6, "save_steps": 1, "save_total_limit": 1,
                                 "gallery_size": 0})
    settings["algorithm"]["overlong_buffer"] = 2  # the embedded grpo punishes overlong answers: fit 6 tokens
    heads = tmp_path / "critical_heads.json"
    heads.write_text(json.dumps({"heads": [0, 1]}))
    data = suite_factory("shapes_count", "train", n=8)
    model = tiny_model_factory("qwen2_5_vl")
    out = tmp_path / "run"
    return lambda: train_run(model, settings, heads, [data], out), out


def _weights(final):
    from safetensors.torch import load_file

    tensors = {}
    for file in sorted(final.glob("*.safetensors")):
        tensors.update(load_file(file))
    assert tensors, f"no weights in {final}"
    return tensors


def test_kill_before_done_json_ends_at_max_steps(tiny_run):
    run, out = tiny_run
    first = run()
    assert first["steps"] == MAX_STEPS
    # save_total_limit=1 (TRL's own rotation): only the newest checkpoint is kept
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == [f"checkpoint-{MAX_STEPS}"]
    uninterrupted = _weights(out / "final")

    # killed after the last checkpoint, during the final save: no done.json, no final/, a torn temporary
    (out / "done.json").unlink()
    shutil.rmtree(out / "final")
    torn = out / ".final.x1y2z3.tmp" / "final"
    torn.mkdir(parents=True)
    (torn / "model.safetensors").write_bytes(b"half")
    stray = out / "checkpoints" / f"checkpoint-{MAX_STEPS + 7}"  # killed while saving: no trainer state
    stray.mkdir()

    second = run()
    assert second["steps"] == MAX_STEPS, "the resumed run trained past max_steps"
    assert second["resumed_from"] == f"checkpoint-{MAX_STEPS}"
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, MAX_STEPS + 1))
    assert not torn.parent.exists() and not stray.exists()
    resumed = _weights(out / "final")
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted.items():
        assert resumed[name].equal(tensor), f"{name} differs from the uninterrupted run's"


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (needs root and mount rights; skipped with the reason otherwise)."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    yield mount
    # lazy: the failed writer's file may still be open when the fixture ends; never leave a mount behind
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_full_disk_while_saving_names_the_directory(small_disk):
    import torch

    from kawhi.train.faults import DiskFullError, disk_full_errors

    target = small_disk / "checkpoints"
    target.mkdir()
    with pytest.raises(DiskFullError) as caught:
        with disk_full_errors(target, "training (writing checkpoints)"):
            torch.save({"w": torch.zeros(1 << 20)}, target / "optimizer.pt")  # 4 MiB into 256 KiB
    assert caught.value.errno == errno.ENOSPC
    assert str(target) in str(caught.value) and "save_total_limit" in str(caught.value)


def test_other_errors_pass_through_unchanged(tmp_path):
    from kawhi.train.faults import disk_full_errors

    with pytest.raises(RuntimeError, match="shape mismatch"):
        with disk_full_errors(tmp_path, "training"):
            raise RuntimeError("shape mismatch")
