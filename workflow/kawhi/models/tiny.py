"""Tiny Qwen2.5-VL-class and Qwen3-VL-class models, built from their transformers config classes.

The model, the processor and the tokenizer are the real transformers classes of each architecture,
only small: a ~1M-parameter decoder with grouped-query attention and multimodal rotary embeddings,
a two-block vision tower, and an image processor whose patches make a 64-px picture a 4x4 grid of
visual tokens (8-px patches, 2x2 merge). Saved with ``save_pretrained``, a tiny model loads through
``AutoProcessor`` / ``AutoModelForImageTextToText`` exactly like a hub checkpoint, offline.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kawhi.atomic import atomic_path

log = logging.getLogger(__name__)

ARCHS = ("qwen2_5_vl", "qwen3_vl")
SPATIAL_MERGE = 2
TEMPORAL_PATCH = 2
MAX_POSITIONS = 4096


@dataclass(frozen=True)
class TinySizes:
    """The ``models.<name>.tiny`` config block (defaults equal the schema's)."""

    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 8
    num_key_value_heads: int = 2
    intermediate_size: int = 256
    vision_hidden_size: int = 64
    vision_depth: int = 2
    vision_num_heads: int = 2
    patch_size: int = 8
    vocab_size: int = 1024

    @classmethod
    def from_dict(cls, sizes: dict[str, Any] | None) -> "TinySizes":
        sizes = dict(sizes or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(sizes) - known)
        if unknown:
            raise ValueError(f"unknown tiny model size key(s) {unknown}; known: {sorted(known)}")
        return cls(**sizes)

    def check(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"tiny.hidden_size={self.hidden_size} is not divisible by "
                             f"tiny.num_attention_heads={self.num_attention_heads}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"tiny.num_attention_heads={self.num_attention_heads} is not divisible by "
                             f"tiny.num_key_value_heads={self.num_key_value_heads}")
        if (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError("tiny.hidden_size / tiny.num_attention_heads (the head dim) must be even for rotary")
        if self.vision_hidden_size % self.vision_num_heads:
            raise ValueError(f"tiny.vision_hidden_size={self.vision_hidden_size} is not divisible by "
                             f"tiny.vision_num_heads={self.vision_num_heads}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


def mrope_section(arch: str, head_dim: int) -> list[int]:
    """(temporal, height, width) rotary frequency split of the real model, scaled to ``head_dim``.

    Qwen2.5-VL splits the 64 frequencies of its 128-dim heads 16/24/24 in blocks; Qwen3-VL splits them
    24/20/20, interleaved. The same proportions over head_dim / 2 frequencies, rounded.
    """
    half = head_dim // 2
    if arch == "qwen2_5_vl":
        t = max(1, half * 16 // 64)
        h = (half - t) // 2
        return [t, h, half - t - h]
    h = max(1, half * 20 // 64)
    return [half - 2 * h, h, h]


def _token_ids(tokenizer) -> dict[str, int]:
    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"),
        ("eos_token_id", "<|im_end|>"), ("pad_token_id", "<|endoftext|>"))}
    missing = [name for name, i in ids.items() if i is None or i == tokenizer.unk_token_id]
    if missing:
        raise ValueError(f"tokenizer lacks the special tokens for {missing}")
    return ids


def build_config(arch: str, sizes: TinySizes, tokenizer, image_size: int = 64):
    """The transformers config of a tiny ``arch`` model (Qwen2_5_VLConfig or Qwen3VLConfig)."""
    sizes.check()
    ids = _token_ids(tokenizer)
    if len(tokenizer) > sizes.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than tiny.vocab_size={sizes.vocab_size}")
    text = dict(
        vocab_size=sizes.vocab_size, hidden_size=sizes.hidden_size, intermediate_size=sizes.intermediate_size,
        num_hidden_layers=sizes.num_hidden_layers, num_attention_heads=sizes.num_attention_heads,
        num_key_value_heads=sizes.num_key_value_heads, max_position_embeddings=MAX_POSITIONS,
        bos_token_id=None, eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"],
    )
    vision = dict(
        depth=sizes.vision_depth, hidden_size=sizes.vision_hidden_size,
        intermediate_size=2 * sizes.vision_hidden_size, num_heads=sizes.vision_num_heads,
        patch_size=sizes.patch_size, spatial_merge_size=SPATIAL_MERGE, temporal_patch_size=TEMPORAL_PATCH,
        out_hidden_size=sizes.hidden_size,
    )
    special = {k: ids[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id",
                                   "vision_end_token_id")}
    section = mrope_section(arch, sizes.head_dim)
    if arch == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": section}
        # Windowed attention in all vision blocks but the last, as in the real tower; a window spans
        # 2x2 merged tokens (a quarter of a 64-px image).
        vision.update(window_size=2 * sizes.patch_size * SPATIAL_MERGE,
                      fullatt_block_indexes=[sizes.vision_depth - 1])
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **special)
    if arch == "qwen3_vl":
        from transformers import Qwen3VLConfig

        text["head_dim"] = sizes.head_dim
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 5_000_000.0, "mrope_section": section,
                                   "mrope_interleaved": True}
        grid = max(1, image_size // sizes.patch_size)
        # Learnt position embeddings for the native grid (interpolated for other sizes, as in the real
        # model); deepstack injects an early vision block's features into the first decoder layer.
        vision.update(hidden_act="gelu_pytorch_tanh", num_position_embeddings=grid * grid,
                      deepstack_visual_indexes=[0] if sizes.vision_depth > 1 else [])
        return Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **special)
    raise ValueError(f"unknown arch '{arch}'; expected one of {ARCHS}")


def build_processor(arch: str, tokenizer, patch_size: int = 8, image_size: int = 64):
    """The real processor class of ``arch`` around ``tokenizer``, with a small-image image processor.

    Pixels are bounded so that an ``image_size`` picture passes unresized (it is a multiple of
    patch * merge) and larger pictures shrink to that budget: the visual-token count stays small.
    """
    from transformers import Qwen2VLImageProcessor

    factor = patch_size * SPATIAL_MERGE
    if image_size % factor:
        raise ValueError(f"synthetic.image_size={image_size} must be a multiple of patch_size*merge={factor}")
    common = dict(patch_size=patch_size, merge_size=SPATIAL_MERGE, temporal_patch_size=TEMPORAL_PATCH)
    size = {"shortest_edge": factor * factor, "longest_edge": image_size * image_size}
    video_size = {"shortest_edge": factor * factor * TEMPORAL_PATCH,
                  "longest_edge": image_size * image_size * TEMPORAL_PATCH * 4}
    if arch == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor, Qwen2VLVideoProcessor

        image_processor = Qwen2VLImageProcessor(size=size, **common)
        video_processor = Qwen2VLVideoProcessor(size=video_size, **common)
        return Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                   video_processor=video_processor, chat_template=tokenizer.chat_template)
    if arch == "qwen3_vl":
        from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

        half = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}  # Qwen3-VL's normalisation
        image_processor = Qwen2VLImageProcessor(size=size, **common, **half)
        video_processor = Qwen3VLVideoProcessor(size=video_size, **common, **half)
        return Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                video_processor=video_processor, chat_template=tokenizer.chat_template)
    raise ValueError(f"unknown arch '{arch}'; expected one of {ARCHS}")


def _suite_texts(seed: int) -> list[str]:
    """Prompts and targets of the synthetic suites: the tokenizer learns their words as single pieces."""
    try:
        from kawhi.data.synthetic import suite_texts
    except ImportError:  # the data stage is optional for building a model
        return []
    return suite_texts(n_per_suite=40, seed=seed)


def build_tiny_model(arch: str, out_dir: str | Path, seed: int = 0, sizes: dict[str, Any] | None = None,
                     image_size: int = 64) -> Path:
    """Build a tiny ``arch`` model with its tokenizer and processor; save it atomically to ``out_dir``.

    Deterministic: the same arguments give byte-identical weights.
    """
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    from kawhi.models.tokenizer import train_tokenizer

    if arch not in ARCHS:
        raise ValueError(f"unknown arch '{arch}'; expected one of {ARCHS}")
    tiny = TinySizes.from_dict(sizes)
    tokenizer = train_tokenizer(vocab_size=tiny.vocab_size, seed=seed, extra_texts=_suite_texts(seed))
    processor = build_processor(arch, tokenizer, patch_size=tiny.patch_size, image_size=image_size)
    config = build_config(arch, tiny, tokenizer, image_size=image_size)

    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    ids = _token_ids(tokenizer)
    model.generation_config = GenerationConfig(
        eos_token_id=[ids["eos_token_id"], ids["pad_token_id"]], pad_token_id=ids["pad_token_id"],
        do_sample=False, bos_token_id=None,
    )
    n_params = sum(p.numel() for p in model.parameters())
    log.info("built tiny %s: %.2fM parameters, vocab %d (%d used)", arch, n_params / 1e6, tiny.vocab_size,
             len(tokenizer))

    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
    return out_dir
