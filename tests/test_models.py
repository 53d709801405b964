"""Tiny models: build, offline round trip through the Auto classes, determinism, GQA, tokenizer, fetch."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st
from PIL import Image

from kawhi.data.prompts import build_messages

ARCHS = ("qwen2_5_vl", "qwen3_vl")


def _digest(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()


def _picture(colour=(220, 30, 30), size: int = 64) -> Image.Image:
    return Image.new("RGB", (size, size), colour)


@pytest.fixture(scope="module", autouse=True)
def _offline():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_round_trip_with_auto_classes_offline(tiny_model_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    arch = model.config.model_type
    assert type(processor).__name__ == {"qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor"}[arch]
    text = processor.apply_chat_template(build_messages("How many shapes?", ["1", "2"]), add_generation_prompt=True,
                                         tokenize=False)
    inputs = processor(text=[text], images=[_picture()], return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[0] == 1 and inputs["input_ids"].shape[1] < out.shape[1] <= inputs["input_ids"].shape[1] + 5


def test_picture_gives_sixteen_visual_tokens(tiny_model_dir):
    from kawhi.models.load import load_model

    model, processor = load_model(tiny_model_dir)
    assert not model.training
    text = processor.apply_chat_template(build_messages("Q?"), add_generation_prompt=True, tokenize=False)
    assert "<|vision_start|><|image_pad|><|vision_end|>" in text
    inputs = processor(text=[text], images=[_picture()], return_tensors="pt")
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 8]]  # 8-px patches of a 64-px picture
    assert int((inputs["input_ids"] == processor.image_token_id).sum()) == 16  # after the 2x2 merge


def test_grouped_query_attention_kept(tiny_model_dir):
    from transformers import AutoConfig

    text = AutoConfig.from_pretrained(tiny_model_dir).get_text_config()
    assert text.num_key_value_heads < text.num_attention_heads
    from kawhi.models.load import load_model

    model, _ = load_model(tiny_model_dir)
    attn = model.model.language_model.layers[0].self_attn
    head_dim = text.hidden_size // text.num_attention_heads
    assert attn.k_proj.out_features == text.num_key_value_heads * head_dim
    assert attn.q_proj.out_features == text.num_attention_heads * head_dim


def test_generation_stops_at_im_end(tiny_model_dir):
    from transformers import AutoProcessor, GenerationConfig

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    generation = GenerationConfig.from_pretrained(tiny_model_dir)
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in generation.eos_token_id
    assert processor.tokenizer.pad_token == "<|endoftext|>"


@pytest.mark.parametrize("arch", ARCHS)
def test_same_seed_same_bytes_other_seed_other_weights(arch, tiny_model_factory, tmp_path):
    from kawhi.models.tiny import build_tiny_model

    again = build_tiny_model(arch=arch, out_dir=tmp_path / "again", seed=0)
    other = build_tiny_model(arch=arch, out_dir=tmp_path / "other", seed=1)
    assert _digest(again) == _digest(tiny_model_factory(arch))
    assert _digest(other) != _digest(again)
    assert (again / "tokenizer.json").read_bytes() == (tiny_model_factory(arch) / "tokenizer.json").read_bytes()


def test_sizes_are_config_keys(tmp_path):
    from transformers import AutoConfig

    from kawhi.models.tiny import build_tiny_model

    out = build_tiny_model("qwen2_5_vl", tmp_path / "m", sizes={"hidden_size": 64, "num_attention_heads": 4,
                                                                  "num_key_value_heads": 1, "num_hidden_layers": 1})
    text = AutoConfig.from_pretrained(out).get_text_config()
    assert (text.hidden_size, text.num_attention_heads, text.num_key_value_heads, text.num_hidden_layers) == (64, 4, 1, 1)
    with pytest.raises(ValueError, match="hidden_sizes"):
        build_tiny_model("qwen2_5_vl", tmp_path / "bad", sizes={"hidden_sizes": 64})
    with pytest.raises(ValueError, match="num_key_value_heads"):
        build_tiny_model("qwen2_5_vl", tmp_path / "bad", sizes={"num_key_value_heads": 3})


@given(heads=st.integers(1, 16), head_dim=st.sampled_from([8, 12, 16, 32, 64, 128]))
@settings(max_examples=40, deadline=None)
def test_mrope_section_fills_half_the_head_dim(heads, head_dim):
    from kawhi.models.tiny import mrope_section

    for arch in ARCHS:
        section = mrope_section(arch, head_dim)
        assert sum(section) == head_dim // 2 and min(section) >= 1
    assert mrope_section("qwen2_5_vl", 128) == [16, 24, 24]  # the real models' splits
    assert mrope_section("qwen3_vl", 128) == [24, 20, 20]


def test_tokenizer_digits_special_tokens_and_template(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tok("The answer is \\boxed{1234}.", add_special_tokens=False)["input_ids"]
    pieces = [tok.decode([i]) for i in ids]
    assert ["1", "2", "3", "4"] == [p for p in pieces if p.isdigit()]  # one digit per token
    for special in ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                    "<|video_pad|>", "<|endoftext|>"):
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1, special
    text = "Cells: red, empty, blue, red.\n\nRed: 2.\n\nThe answer is \\boxed{2}."
    assert tok.decode(tok(text)["input_ids"]) == text
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q"}]},
         {"role": "assistant", "content": [{"type": "text", "text": "A"}]}], tokenize=False)
    assert rendered == ("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Q<|im_end|>\n"
                        "<|im_start|>assistant\nA<|im_end|>\n")


def test_build_model_command_writes_build_json(tmp_path):
    from kawhi.cli import main

    out = tmp_path / "base"
    assert main(["build-model", "--arch", "qwen3_vl", "--out", str(out), "--seed", "0"]) == 0
    record = json.loads((out / "build.json").read_text())
    assert record["arch"] == "qwen3_vl" and record["parameters"] > 100_000
    assert {"config_hash", "seed", "packages", "git_revision"} <= set(record["provenance"])


def test_fetch_offline_missing_model_fails_at_once_naming_it(tmp_path, monkeypatch):
    from kawhi.models.fetch import ModelFetchError, fetch_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelFetchError, match=r"kawhi-nobody/NoSuchModel.*hf download kawhi-nobody/NoSuchModel"):
        fetch_model("kawhi-nobody/NoSuchModel", tmp_path / "base")
    assert not (tmp_path / "base").exists()


def test_fetch_local_path_links_and_loads(tiny_model_factory, tmp_path):
    from kawhi.models.fetch import ModelFetchError, fetch_model
    from kawhi.models.load import load_model

    source = tiny_model_factory("qwen2_5_vl")
    out = fetch_model(str(source), tmp_path / "models" / "base")
    assert out.is_symlink() and out.resolve() == source.resolve()
    model, processor = load_model(out)
    assert model.config.model_type == "qwen2_5_vl"
    with pytest.raises(ModelFetchError, match="not a model directory"):
        fetch_model(str(tmp_path), tmp_path / "other")


def test_load_model_refuses_a_directory_without_config(tmp_path):
    from kawhi.models.load import load_model

    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_model(tmp_path)
