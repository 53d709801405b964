"""Attention-head masking for the global head ablation (METHOD.md section 1).

Masking query head ``h`` means zeroing its slice of the attention output -- the ``head_dim`` columns
``[h*d, (h+1)*d)`` of the tensor that feeds ``self_attn.o_proj`` -- in every text-decoder layer at
once. A forward pre-hook on ``o_proj`` does that, so the mask works whatever attention implementation
computed the output (eager, sdpa, flash) and never touches the weights: when the block exits, the
hooks are removed and the model is exactly what it was.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn


def text_config(model: nn.Module):
    """The text-decoder config of a vision-language model (or the model's own config if text-only)."""
    config = model.config
    return config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The text decoder's layers (``model.model.language_model.layers`` for Qwen2.5-VL and Qwen3-VL)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    layers = getattr(decoder, "layers", None)
    if isinstance(layers, nn.ModuleList) and len(layers) > 0:
        return layers
    # Fall back to a search, for wrappers whose get_decoder() does not reach the text model.
    for name, module in model.named_modules():
        if name.endswith("language_model.layers") and isinstance(module, nn.ModuleList):
            return module
    raise ValueError(f"cannot find the text-decoder layers of {type(model).__name__}")


def num_query_heads(model: nn.Module) -> int:
    return int(text_config(model).num_attention_heads)


def head_dim(model: nn.Module) -> int:
    """Per-head width of the attention output, read from the modules (Qwen3 sets it independently)."""
    attn = decoder_layers(model)[0].self_attn
    return int(attn.o_proj.in_features // num_query_heads(model))


def _check_heads(heads: Sequence[int], n_heads: int) -> list[int]:
    out = sorted({int(h) for h in heads})
    bad = [h for h in out if not 0 <= h < n_heads]
    if bad:
        raise ValueError(f"head indices {bad} out of range: the model has {n_heads} query heads")
    return out


@contextlib.contextmanager
def mask_heads(model: nn.Module, heads: Sequence[int]) -> Iterator[nn.Module]:
    """Zero the outputs of query heads ``heads`` in every text-decoder layer while the block runs.

    ``with mask_heads(model, [3]): logits = model(**batch).logits``. With no heads, nothing is hooked,
    so the model's outputs are bit-identical to an unmasked call. The hooks are removed on exit,
    exceptions included.
    """
    n_heads = num_query_heads(model)
    chosen = _check_heads(heads, n_heads)
    if not chosen:
        yield model
        return
    d = head_dim(model)
    columns = torch.cat([torch.arange(h * d, (h + 1) * d) for h in chosen])
    device_columns: dict[torch.device, torch.Tensor] = {}

    def zero_heads(module: nn.Module, args: tuple) -> tuple:
        hidden = args[0]
        idx = device_columns.get(hidden.device)
        if idx is None:
            idx = device_columns[hidden.device] = columns.to(hidden.device)
        # index_fill is out of place: the attention output stays intact for anyone else holding it,
        # and autograd sees a zero gradient for the masked heads.
        return (hidden.index_fill(-1, idx, 0.0),) + tuple(args[1:])

    handles = []
    try:
        for layer in decoder_layers(model):
            handles.append(layer.self_attn.o_proj.register_forward_pre_hook(zero_heads))
        yield model
    finally:
        for handle in handles:
            handle.remove()
