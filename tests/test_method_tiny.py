"""Tiny Qwen-VL models and hand-built batches for the method tests (helpers, plus checks of the helpers).

The models come from the session fixture ``tiny_model_factory`` (kawhi.models.tiny) when that module
exists; otherwise they are built here straight from the transformers config classes, with the same
shape of architecture (GQA, M-RoPE, merge size 2).
"""

from __future__ import annotations

import torch
from torch import nn

ARCHS = ("qwen2_5_vl", "qwen3_vl")
IMAGE_GRIDS = ((1, 4, 6), (1, 4, 4))  # (t, h, w) in patches, one image per row


def _config_model(arch: str) -> nn.Module:
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen3VLConfig,
                              Qwen3VLForConditionalGeneration)

    special = dict(image_token_id=290, video_token_id=291, vision_start_token_id=292, vision_end_token_id=293)
    text = dict(vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                intermediate_size=128, bos_token_id=None, eos_token_id=None, pad_token_id=0)
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=4, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=64)
    torch.manual_seed(0)
    if arch == "qwen2_5_vl":
        rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}
        config = Qwen2_5_VLConfig(text_config={**text, "rope_parameters": rope},
                                  vision_config={**vision, "window_size": 16, "fullatt_block_indexes": [0]},
                                  **special)
        return Qwen2_5_VLForConditionalGeneration(config)
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3], "mrope_interleaved": True}
    config = Qwen3VLConfig(text_config={**text, "head_dim": 16, "rope_parameters": rope},
                           vision_config={**vision, "num_position_embeddings": 64, "deepstack_visual_indexes": [0]},
                           **special)
    return Qwen3VLForConditionalGeneration(config)


def tiny_vl_model(arch: str, request=None, attn: str = "sdpa") -> nn.Module:
    """A tiny float32 model of ``arch`` in eval mode with attention implementation ``attn``.

    ``request`` (pytest's) lets it use the session fixture ``tiny_model_factory`` once that exists.
    """
    try:
        import kawhi.models.tiny  # noqa: F401
    except ImportError:
        request = None
    if request is None:
        model = _config_model(arch)
    else:
        from transformers import AutoModelForImageTextToText

        model = AutoModelForImageTextToText.from_pretrained(request.getfixturevalue("tiny_model_factory")(arch),
                                                            dtype=torch.float32)
    model.set_attn_implementation(attn)
    return model.float().eval()


def make_batch(model: nn.Module, completion_width: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    """Two left-padded rows, each with one image (of different grids) followed by question text.

    With ``completion_width`` > 0 the last that many positions of every row are the completion.
    """
    config = model.config
    vision = config.vision_config
    merge = vision.spatial_merge_size
    g = torch.Generator().manual_seed(seed)
    special = {config.image_token_id, config.video_token_id, config.vision_start_token_id, config.vision_end_token_id}
    vocab = [i for i in range(3, min(config.get_text_config().vocab_size, 280)) if i not in special]
    vocab = torch.tensor(vocab)

    def words(n: int) -> list[int]:
        return vocab[torch.randint(len(vocab), (n,), generator=g)].tolist()

    rows = []
    for i, (t, h, w) in enumerate(IMAGE_GRIDS):
        n_visual = t * h * w // merge**2
        rows.append(words(2 + i) + [config.vision_start_token_id] + [config.image_token_id] * n_visual
                    + [config.vision_end_token_id] + words(5) + words(completion_width))
    width = max(len(r) for r in rows)
    pad = 0
    input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    attention_mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    n_patches = sum(t * h * w for t, h, w in IMAGE_GRIDS)
    channels = getattr(vision, "in_channels", getattr(vision, "in_chans", 3))
    pixel_values = torch.randn(n_patches, channels * vision.temporal_patch_size * vision.patch_size**2, generator=g)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "pixel_values": pixel_values,
            "image_grid_thw": torch.tensor(IMAGE_GRIDS), "mm_token_type_ids": (input_ids == config.image_token_id).int()}


def test_make_batch_has_one_image_per_row() -> None:
    model = _config_model("qwen2_5_vl")
    batch = make_batch(model, completion_width=3)
    per_row = (batch["input_ids"] == model.config.image_token_id).sum(dim=1).tolist()
    assert per_row == [t * h * w // 4 for t, h, w in IMAGE_GRIDS]
    assert batch["attention_mask"][1, 0] == 0 and batch["attention_mask"][:, -1].all()
