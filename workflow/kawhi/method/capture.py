"""Record post-rotary queries and keys of chosen heads during an ordinary forward pass.

KAWHI needs, for the vision-critical heads H* only, the query and key vectors the decoder actually
used (after multimodal RoPE, and after q/k-norm in Qwen3-VL). transformers dispatches every decoder
attention call through ``ALL_ATTENTION_FUNCTIONS[config._attn_implementation]`` and hands it exactly
those tensors plus the attention module itself (which carries ``layer_idx``). So the capture
registers a thin wrapper around whatever implementation is active (sdpa, eager, flash...), points
the text decoder's config at it for the duration of the ``with`` block and restores it afterwards.
Attention still runs in the original kernel; the wrapper only slices out the chosen heads (detached)
before calling it. The vision encoder has its own config object and is never touched.
"""

from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

CAPTURE_PREFIX = "kawhi_capture_"

# id(attention module) -> (recorder, layer index): how the shared wrapper finds who is listening.
_LISTENERS: dict[int, tuple["_Recorder", int]] = {}


@dataclass
class CapturedQK:
    """Post-rotary q and k of the chosen heads, per decoder layer.

    ``q[layer]`` is [B, H*, L, d] for query heads ``heads`` (in that order); ``k[layer]`` is
    [B, H*, L, d] holding, for each chosen query head h, the key of the kv head it reads
    (h // (n_heads // n_kv_heads)). ``scaling`` is the softmax temperature the model uses (1/sqrt d).
    """

    q: dict[int, Tensor]
    k: dict[int, Tensor]
    heads: tuple[int, ...]
    layers: tuple[int, ...]
    scaling: float

    def stacked(self, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """q and k of all layers as [B, n_layers * H*, L, d] in ``dtype`` (layers x heads flattened)."""
        q = torch.cat([self.q[layer] for layer in self.layers], dim=1).to(dtype)
        k = torch.cat([self.k[layer] for layer in self.layers], dim=1).to(dtype)
        return q, k


@dataclass
class _Recorder:
    """What one ``QKCapture`` stores: per layer, a list of (q, k_unique) chunks, one per forward call."""

    q_index: Tensor
    kv_unique: Tensor
    kv_of_head: Tensor  # position of each chosen head's kv head inside kv_unique
    q_chunks: dict[int, list[Tensor]] = field(default_factory=dict)
    k_chunks: dict[int, list[Tensor]] = field(default_factory=dict)
    scaling: float | None = None

    def record(self, layer: int, query: Tensor, key: Tensor, scaling: float) -> None:
        if self.q_index.device != query.device:
            self.q_index = self.q_index.to(query.device)
            self.kv_unique = self.kv_unique.to(query.device)
        # index_select copies only the chosen heads; detached so nothing holds the autograd graph.
        self.q_chunks.setdefault(layer, []).append(query.detach().index_select(1, self.q_index))
        self.k_chunks.setdefault(layer, []).append(key.detach().index_select(1, self.kv_unique))
        self.scaling = float(scaling)


def decoder_attention_modules(model: nn.Module) -> dict[int, nn.Module]:
    """The text decoder's self-attention modules by layer index (vision-encoder attention excluded).

    A decoder attention module is one that carries ``layer_idx``, ``num_key_value_groups`` and an
    ``o_proj`` and whose config is the model's text config; the Qwen-VL vision blocks have none of
    ``layer_idx``/``o_proj`` and use the separate vision config. Cached per model (a trainer opens a
    capture every step).
    """
    cached = _MODULES.get(model)
    if cached is None:
        cached = _find_decoder_attention(model)
        _MODULES[model] = cached
    return cached


_MODULES: "weakref.WeakKeyDictionary[nn.Module, dict[int, nn.Module]]" = weakref.WeakKeyDictionary()


def _find_decoder_attention(model: nn.Module) -> dict[int, nn.Module]:
    text_config = _text_config(model)
    found: dict[int, nn.Module] = {}
    for module in model.modules():
        if (getattr(module, "layer_idx", None) is not None and hasattr(module, "o_proj")
                and hasattr(module, "num_key_value_groups") and getattr(module, "config", None) is text_config):
            found[int(module.layer_idx)] = module
    if not found:
        raise ValueError(f"no text-decoder attention modules found in {type(model).__name__}")
    return dict(sorted(found.items()))


def _text_config(model: nn.Module) -> Any:
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError(f"{type(model).__name__} has no .config; pass the transformers model itself")
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _capturing_attention(base_name: str) -> Callable[..., Any]:
    """The wrapper registered as ``kawhi_capture_<base_name>``: record, then run the base kernel."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    def capturing_attention(module: nn.Module, query: Tensor, key: Tensor, value: Tensor,
                            attention_mask: Tensor | None, **kwargs: Any):
        listener = _LISTENERS.get(id(module))
        if listener is not None:
            recorder, layer = listener
            recorder.record(layer, query, key, kwargs.get("scaling", module.scaling))
        if base_name == "eager":
            # "eager" is not in the registry: each model file defines its own eager function.
            base = sys.modules[type(module).__module__].eager_attention_forward
        else:
            base = ALL_ATTENTION_FUNCTIONS[base_name]
        return base(module, query, key, value, attention_mask, **kwargs)

    capturing_attention.__name__ = f"{CAPTURE_PREFIX}{base_name}"
    return capturing_attention


def _ensure_registered(base_name: str) -> str:
    """Register the capturing wrapper (and the base's mask builder) under a derived name, once."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    name = f"{CAPTURE_PREFIX}{base_name}"
    if name not in AttentionInterface._global_mapping:
        AttentionInterface.register(name, _capturing_attention(base_name))
    if name not in AttentionMaskInterface._global_mapping and base_name in ALL_MASK_ATTENTION_FUNCTIONS:
        # The mask is built from config._attn_implementation too; use the base kernel's mask format.
        AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS[base_name])
    return name


class QKCapture:
    """``with QKCapture(model, heads=[3, 5]) as cap: model(**batch)`` then ``cap.captured()``.

    ``heads`` are query-head indices (the same index in every captured layer, as H* is defined
    globally); ``layers`` is "all" or a list of decoder layer indices. Every forward pass inside the
    block appends one chunk per layer; ``captured()`` concatenates chunks along the batch axis, so a
    trainer that runs its forward in micro-batches gets one batch back. ``clear()`` drops what was
    recorded. Call ``backward()`` after the block: a gradient-checkpointing recompute inside it would
    record the same batch a second time.
    """

    def __init__(self, model: nn.Module, heads: Sequence[int], layers: Sequence[int] | str = "all"):
        self.model = model
        self.modules = decoder_attention_modules(model)
        if isinstance(layers, str):
            if layers != "all":
                raise ValueError(f"kawhi.layers must be 'all' or a list of layer indices, got '{layers}'")
            layers = list(self.modules)
        missing = [layer for layer in layers if layer not in self.modules]
        if missing:
            raise ValueError(f"kawhi.layers {missing} not in the decoder (layers 0..{max(self.modules)})")
        self.layers = tuple(int(layer) for layer in layers)
        first = self.modules[self.layers[0]]
        n_heads = first.config.num_attention_heads
        group = int(first.num_key_value_groups)
        self.heads = tuple(int(h) for h in heads)
        if not self.heads:
            raise ValueError("QKCapture needs at least one head")
        bad = [h for h in self.heads if not 0 <= h < n_heads]
        if bad:
            raise ValueError(f"head indices {bad} out of range 0..{n_heads - 1}")
        kv_of = [h // group for h in self.heads]
        kv_unique = sorted(set(kv_of))
        self._recorder = _Recorder(
            q_index=torch.tensor(self.heads, dtype=torch.long),
            kv_unique=torch.tensor(kv_unique, dtype=torch.long),
            kv_of_head=torch.tensor([kv_unique.index(kv) for kv in kv_of], dtype=torch.long),
        )
        self._saved_impl: str | None = None

    def __enter__(self) -> "QKCapture":
        config = _text_config(self.model)
        current = config._attn_implementation or "eager"
        if current.startswith(CAPTURE_PREFIX):
            raise RuntimeError("a QKCapture is already active on this model; captures do not nest")
        self._saved_impl = config._attn_implementation
        for layer in self.layers:
            _LISTENERS[id(self.modules[layer])] = (self._recorder, layer)
        config._attn_implementation = _ensure_registered(current)
        return self

    def __exit__(self, *exc: Any) -> None:
        _text_config(self.model)._attn_implementation = self._saved_impl
        for layer in self.layers:
            _LISTENERS.pop(id(self.modules[layer]), None)

    def clear(self) -> None:
        self._recorder.q_chunks.clear()
        self._recorder.k_chunks.clear()

    def captured(self) -> CapturedQK:
        rec = self._recorder
        if not rec.q_chunks:
            raise RuntimeError("QKCapture recorded nothing: run a forward pass of the model inside the block")
        q: dict[int, Tensor] = {}
        k: dict[int, Tensor] = {}
        for layer in self.layers:
            q_parts, k_parts = rec.q_chunks[layer], rec.k_chunks[layer]
            lengths = {part.shape[2] for part in q_parts}
            if len(lengths) > 1:
                raise RuntimeError(f"forward chunks of different sequence lengths {sorted(lengths)} cannot be "
                                   "stacked into one batch; call clear() between batches")
            q[layer] = q_parts[0] if len(q_parts) == 1 else torch.cat(q_parts, dim=0)
            k_unique = k_parts[0] if len(k_parts) == 1 else torch.cat(k_parts, dim=0)
            k[layer] = k_unique.index_select(1, rec.kv_of_head.to(k_unique.device))
        return CapturedQK(q=q, k=k, heads=self.heads, layers=self.layers, scaling=float(rec.scaling))
