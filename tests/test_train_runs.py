"""Every algorithm x {baseline, kawhi} trains a few steps on both tiny architectures; run outputs and gallery."""

import json

import numpy as np
import pytest
from PIL import Image

from kawhi.config import load_config, train_settings
from kawhi.train.run import train_run

TINY = {"max_steps": 2, "per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 10,
        "save_steps": 1, "gallery_size": 2}


@pytest.fixture(scope="module")
def config(repo_root):
    return load_config(repo_root / "config" / "config.yaml")


@pytest.fixture(scope="module")
def heads_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("heads") / "critical_heads.json"
    path.write_text(json.dumps({"heads": [0, 3], "threshold": 50.0, "selected_by": "top_k"}))
    return path


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("algo", ["grpo", "dapo", "gspo"])
@pytest.mark.parametrize("variant", ["baseline", "kawhi"])
def test_grid_cell_trains(arch, algo, variant, config, tiny_model_factory, suite_factory, heads_file, tmp_path):
    settings = train_settings(config, "qwen25vl-tiny", algo, variant)
    settings["training"].update(TINY)
    data = suite_factory("shapes_count", "train", n=8)
    record = train_run(tiny_model_factory(arch), settings, heads_file, [data], tmp_path)

    done = json.loads((tmp_path / "done.json").read_text())
    assert done == json.loads(json.dumps(record))
    assert done["steps"] == 2 and done["algorithm"] == algo and done["variant"] == variant
    assert done["provenance"]["config_hash"] and done["wall_time_s"] > 0
    assert (tmp_path / "final" / "config.json").exists()
    assert list((tmp_path / "final").glob("*.safetensors"))
    assert (tmp_path / "final" / "preprocessor_config.json").exists() or \
        (tmp_path / "final" / "processor_config.json").exists()

    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    for key in ("reward", "reward_std", "completions/mean_length", "clip_ratio/region_mean", "entropy"):
        assert key in lines[0], key
    assert ("kawhi/weight_mean" in lines[0]) == (variant == "kawhi")
    if variant == "kawhi":
        for key in ("kawhi/weight_min", "kawhi/weight_max", "kawhi/selected_fraction", "kawhi/alignment_mean",
                    "kawhi/n_segments", "kawhi/capture_mb"):
            assert key in lines[0], key
        assert 0.1 - 1e-6 <= lines[0]["kawhi/weight_min"] <= lines[0]["kawhi/weight_max"] <= 1.0 + 1e-6  # Eq. 15
        assert done["gallery"] == ["rollout_0.json", "rollout_1.json"]
    else:
        assert done["gallery"] == [] and not (tmp_path / "gallery").exists()
    if algo == "dapo":
        assert "dynamic_sampling/kept_groups" in lines[0] and "dynamic_sampling/filtered_groups" in lines[0]
        assert "rewards/soft_overlong_punishment_reward/mean" in lines[0]


def test_gallery_rollout_files(config, tiny_model_factory, suite_factory, heads_file, tmp_path):
    settings = train_settings(config, "qwen25vl-tiny", "grpo", "kawhi")
    settings["training"].update(TINY)
    data = suite_factory("shapes_count", "train", n=8)
    train_run(tiny_model_factory("qwen2_5_vl"), settings, heads_file, [data], tmp_path)
    record = json.loads((tmp_path / "gallery" / "rollout_0.json").read_text())
    for key in ("prompt", "response", "selections", "segments", "segment_weights", "weight_range", "images", "step"):
        assert key in record, key
    assert "<image>" in record["prompt"] and "<|image_pad|>" not in record["prompt"]
    selection = record["selections"][0]
    selected, key, labels = (np.array(selection[k]) for k in ("selected", "key", "labels"))
    assert selected.shape == key.shape == labels.shape and selected.ndim == 2
    assert not (key.astype(bool) & ~selected.astype(bool)).any()  # every key-region token is selected
    assert record["weight_range"] == [0.1, 1.0]
    assert all(0.1 - 1e-6 <= w <= 1.0 + 1e-6 for w in record["segment_weights"])
    assert len(record["segments"]) == len(record["segment_weights"])
    image = Image.open(tmp_path / "gallery" / record["images"][0])
    assert image.mode == "RGB" and image.size[0] > 0


def test_pixels_to_images_inverts_the_processor(tiny_model_factory):
    from transformers import AutoProcessor

    from kawhi.method.pixels import images_from_pixel_values

    def pixels_to_images(*args):
        return [Image.fromarray(rgb) for rgb in images_from_pixel_values(*args)]

    for arch in ("qwen2_5_vl", "qwen3_vl"):
        processor = AutoProcessor.from_pretrained(tiny_model_factory(arch))
        rng = np.random.default_rng(0)
        image = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        out = processor.image_processor(images=[image, image.transpose(Image.FLIP_LEFT_RIGHT)], return_tensors="pt")
        rebuilt = pixels_to_images(out["pixel_values"], out["image_grid_thw"], processor.image_processor)
        assert len(rebuilt) == 2
        expected = np.asarray(image.resize(rebuilt[0].size, Image.BICUBIC)).astype(int)
        assert rebuilt[0].size == (64, 64)
        # the processor resizes with its own filter; at the native size the round trip is near exact
        assert np.abs(np.asarray(rebuilt[0]).astype(int) - expected).mean() < 2.0
        flipped = np.asarray(image.transpose(Image.FLIP_LEFT_RIGHT)).astype(int)
        assert np.abs(np.asarray(rebuilt[1]).astype(int) - flipped).mean() < 2.0


@pytest.mark.parametrize("variant", ["kawhi-all", "kawhi-random", "kawhi-inverse", "kawhi-kk", "kawhi-sentence",
                                     "kawhi-token", "kawhi-allheads", "kawhi-prerope", "kawhi-attention"])
def test_ablation_variants_train(variant, config, tiny_model_factory, suite_factory, heads_file, tmp_path):
    settings = train_settings(config, "qwen25vl-tiny", "grpo", variant)
    settings["training"].update({**TINY, "max_steps": 1, "gallery_size": 0})
    record = train_run(tiny_model_factory("qwen2_5_vl"), settings, heads_file,
                       [suite_factory("shapes_count", "train", n=8)], tmp_path)
    assert record["steps"] == 1 and record["variant"] == variant
    line = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert "kawhi/weight_mean" in line
    if variant == "kawhi-token":  # every token is its own segment
        assert line["kawhi/n_segments"] == pytest.approx(line["completions/mean_length"], rel=1e-6)
