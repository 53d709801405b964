"""Record the decoder's queries and keys of chosen heads, at chosen positions, during an ordinary forward.

KAWHI reads, in the final decoder layer and for the vision-critical heads only, the queries of the
response tokens and the keys of the visual tokens (METHOD.md section 3). Nothing else is kept:
``query_mask`` and ``key_mask`` ([B, L] booleans) name the positions, and keys stay per kv head
(unexpanded; ``CapturedQK.row`` expands them for GQA when a caller reads one row).

- ``rotary="post"`` (the method): transformers dispatches every decoder attention call through
  ``ALL_ATTENTION_FUNCTIONS[config._attn_implementation]`` with the q/k the layer really uses (after
  the rotary embedding, after q/k-norm where the architecture has one) and the attention module
  itself (which carries ``layer_idx``). The capture registers a thin wrapper around whatever
  implementation is active (sdpa, eager, flash...), points the text decoder's config at it for the
  duration of the ``with`` block and restores it afterwards. The vision encoder has its own config
  object and is never touched.
- ``rotary="pre"`` (the "before RoPE" ablation): forward hooks on the same attention modules' q/k
  projections (on ``q_norm``/``k_norm`` where the architecture normalises q/k, as Qwen3-VL does) record
  the vectors the rotary embedding is about to rotate.

Either way the model's outputs are untouched; the recorder copies only the selected rows, heads and
positions, detached.
"""

from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

CAPTURE_PREFIX = "kawhi_capture_"
ROTARY = ("post", "pre")

# id(attention module) -> (recorder, layer index): how the shared wrapper finds who is listening.
_LISTENERS: dict[int, tuple["_Recorder", int]] = {}


@dataclass
class RowQK:
    """One batch row: its captured queries [n_q, H', d] and GQA-expanded keys [n_k, H', d] (float32),
    with the sequence positions they come from. H' = layers x heads, layer-major."""

    q: Tensor
    k: Tensor
    q_positions: Tensor
    k_positions: Tensor


@dataclass
class CapturedQK:
    """What a ``QKCapture`` recorded, per decoder layer, ragged over the batch rows.

    ``q[layer]`` is [n_q, H, d]: the query vectors of heads ``heads`` at every position of
    ``query_mask`` (row-major over (row, position)); ``k[layer]`` is [n_k, G, d]: the key vectors of the
    distinct kv heads ``kv_heads`` at every position of ``key_mask``. Query head ``heads[i]`` reads kv
    head ``kv_heads[kv_index[i]]``. ``scaling`` is the softmax temperature the model uses.
    """

    q: dict[int, Tensor]
    k: dict[int, Tensor]
    heads: tuple[int, ...]
    kv_heads: tuple[int, ...]
    kv_index: Tensor
    layers: tuple[int, ...]
    scaling: float
    query_mask: Tensor
    key_mask: Tensor

    def __post_init__(self) -> None:
        q_counts = self.query_mask.sum(dim=1)
        k_counts = self.key_mask.sum(dim=1)
        self._q_offsets = torch.cat([q_counts.new_zeros(1), q_counts.cumsum(0)]).tolist()
        self._k_offsets = torch.cat([k_counts.new_zeros(1), k_counts.cumsum(0)]).tolist()

    @property
    def batch_size(self) -> int:
        return int(self.query_mask.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held by the captured tensors (what the trainer keeps until the weights exist)."""
        return sum(t.numel() * t.element_size() for t in (*self.q.values(), *self.k.values()))

    def row(self, b: int) -> RowQK:
        """Row ``b``'s queries and keys as float32, layers' heads side by side, keys expanded to their query heads."""
        q0, q1 = self._q_offsets[b], self._q_offsets[b + 1]
        k0, k1 = self._k_offsets[b], self._k_offsets[b + 1]
        q = torch.cat([self.q[layer][q0:q1] for layer in self.layers], dim=1).float()
        k = torch.cat([self.k[layer][k0:k1].index_select(1, self.kv_index.to(self.k[layer].device))
                       for layer in self.layers], dim=1).float()
        return RowQK(q, k, self.query_mask[b].nonzero()[:, 0], self.key_mask[b].nonzero()[:, 0])


@dataclass
class _Recorder:
    """What one ``QKCapture`` stores: per layer, the (q, k) chunks of each forward call, in row order."""

    heads: Tensor
    kv_heads: Tensor
    first_layer: int
    query_mask: Tensor | None
    key_mask: Tensor | None
    q_chunks: dict[int, list[Tensor]] = field(default_factory=dict)
    k_chunks: dict[int, list[Tensor]] = field(default_factory=dict)
    rows_seen: dict[tuple[str, int], int] = field(default_factory=dict)
    masks_seen: dict[str, list[Tensor]] = field(default_factory=lambda: {"q": [], "k": []})
    scaling: float | None = None

    def _take(self, kind: str, layer: int, states: Tensor, heads: Tensor, mask: Tensor | None) -> Tensor:
        """Rows, positions and heads to keep from ``states`` [b, L, heads, d] (detached copy [n, h, d])."""
        batch, length = states.shape[:2]
        start = self.rows_seen.get((kind, layer), 0)
        self.rows_seen[(kind, layer)] = start + batch
        if mask is None:
            rows = torch.ones(batch, length, dtype=torch.bool)
        else:
            if start + batch > mask.shape[0] or mask.shape[1] != length:
                raise RuntimeError(f"QKCapture: a forward over {(start + batch, length)} (rows, positions) does not fit "
                                   f"the position masks of shape {tuple(mask.shape)}; capture one batch per block")
            rows = mask[start:start + batch]
        if layer == self.first_layer:  # the rows each chunk covers, once per forward call
            self.masks_seen[kind].append(rows.cpu())
        rows = rows.to(states.device)
        heads = heads.to(states.device)
        # the chosen heads first (a small copy of every position), then the positions: the same values as
        # states[rows].index_select(1, heads) without gathering every head's vectors at the kept positions
        return states.detach().index_select(2, heads)[rows]

    def record_query(self, layer: int, states: Tensor) -> None:
        self.q_chunks.setdefault(layer, []).append(self._take("q", layer, states, self.heads, self.query_mask))

    def record_key(self, layer: int, states: Tensor) -> None:
        self.k_chunks.setdefault(layer, []).append(self._take("k", layer, states, self.kv_heads, self.key_mask))


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


def resolve_layers(model: nn.Module, layers: Sequence[int] | str) -> tuple[int, ...]:
    """``kawhi.layers`` -> decoder layer indices: "all", or indices where -1 is the final layer."""
    modules = decoder_attention_modules(model)
    n_layers = max(modules) + 1
    if isinstance(layers, str):
        if layers != "all":
            raise ValueError(f"kawhi.layers must be 'all' or a list of layer indices, got '{layers}'")
        return tuple(modules)
    resolved = []
    for layer in layers:
        index = int(layer) + n_layers if int(layer) < 0 else int(layer)
        if index not in modules:
            raise ValueError(f"kawhi.layers entry {layer} is not a decoder layer (the decoder has {n_layers})")
        resolved.append(index)
    return tuple(dict.fromkeys(resolved))


def _capturing_attention(base_name: str) -> Callable[..., Any]:
    """The wrapper registered as ``kawhi_capture_<base_name>``: record, then run the base kernel."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    def capturing_attention(module: nn.Module, query: Tensor, key: Tensor, value: Tensor,
                            attention_mask: Tensor | None, **kwargs: Any):
        listener = _LISTENERS.get(id(module))
        if listener is not None:
            recorder, layer = listener
            recorder.record_query(layer, query.transpose(1, 2))
            recorder.record_key(layer, key.transpose(1, 2))
            recorder.scaling = float(kwargs.get("scaling", module.scaling))
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


def _pre_rotary_hooks(module: nn.Module, recorder: _Recorder, layer: int) -> list[Any]:
    """Forward hooks that record q/k as they enter the rotary embedding: the outputs of ``q_norm``/``k_norm``
    where the layer has them ([b, L, heads, d]), else of ``q_proj``/``k_proj`` ([b, L, heads * d])."""
    head_dim = int(module.head_dim)
    normed = hasattr(module, "q_norm") and hasattr(module, "k_norm")
    q_source, k_source = (module.q_norm, module.k_norm) if normed else (module.q_proj, module.k_proj)

    def on_query(_module: nn.Module, _args: Any, output: Tensor) -> None:
        recorder.record_query(layer, output.view(*output.shape[:2], -1, head_dim))
        recorder.scaling = float(module.scaling)

    def on_key(_module: nn.Module, _args: Any, output: Tensor) -> None:
        recorder.record_key(layer, output.view(*output.shape[:2], -1, head_dim))

    return [q_source.register_forward_hook(on_query), k_source.register_forward_hook(on_key)]


class QKCapture:
    """``with QKCapture(model, heads=[3, 5], layers=[-1]) as cap: model(**batch)`` then ``cap.captured()``.

    ``heads`` are query-head indices (the same in every captured layer, as H_c is defined globally);
    ``layers`` is "all" or decoder layer indices (negative counts from the end). ``query_mask`` /
    ``key_mask`` ([B, L] bool, the whole batch of the block) choose the positions whose q / k are kept
    (None keeps every position). Forward passes inside the block may run in micro-batches of rows, in
    order; the capture concatenates them. Call ``backward()`` after the block: a gradient-checkpointing
    recompute inside it would record the same rows a second time.
    """

    def __init__(self, model: nn.Module, heads: Sequence[int], layers: Sequence[int] | str = (-1,),
                 rotary: str = "post", query_mask: Tensor | None = None, key_mask: Tensor | None = None):
        if rotary not in ROTARY:
            raise ValueError(f"kawhi.rotary must be one of {ROTARY}, got '{rotary}'")
        self.model = model
        self.rotary = rotary
        self.modules = decoder_attention_modules(model)
        self.layers = resolve_layers(model, layers)
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
        self.kv_heads = tuple(sorted(set(kv_of)))
        self.kv_index = torch.tensor([self.kv_heads.index(kv) for kv in kv_of], dtype=torch.long)
        if query_mask is not None and key_mask is not None and query_mask.shape != key_mask.shape:
            raise ValueError(f"query_mask {tuple(query_mask.shape)} and key_mask {tuple(key_mask.shape)} differ")
        self._recorder = _Recorder(
            heads=torch.tensor(self.heads, dtype=torch.long),
            kv_heads=torch.tensor(self.kv_heads, dtype=torch.long),
            first_layer=self.layers[0],
            query_mask=None if query_mask is None else query_mask.bool().cpu(),
            key_mask=None if key_mask is None else key_mask.bool().cpu(),
        )
        self._saved_impl: str | None = None
        self._hooks: list[Any] = []

    def __enter__(self) -> "QKCapture":
        config = _text_config(self.model)
        current = config._attn_implementation or "eager"
        if current.startswith(CAPTURE_PREFIX) or any(id(self.modules[layer]) in _LISTENERS for layer in self.layers):
            raise RuntimeError("a QKCapture is already active on this model; captures do not nest")
        if self.rotary == "post":
            self._saved_impl = config._attn_implementation
            for layer in self.layers:
                _LISTENERS[id(self.modules[layer])] = (self._recorder, layer)
            config._attn_implementation = _ensure_registered(current)
        else:
            for layer in self.layers:
                _LISTENERS[id(self.modules[layer])] = (self._recorder, layer)  # marks the module as captured
                self._hooks += _pre_rotary_hooks(self.modules[layer], self._recorder, layer)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.rotary == "post":
            _text_config(self.model)._attn_implementation = self._saved_impl
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        for layer in self.layers:
            _LISTENERS.pop(id(self.modules[layer]), None)

    def captured(self) -> CapturedQK:
        rec = self._recorder
        if not rec.q_chunks:
            raise RuntimeError("QKCapture recorded nothing: run a forward pass of the model inside the block")
        q = {layer: torch.cat(rec.q_chunks[layer], dim=0) for layer in self.layers}
        k = {layer: torch.cat(rec.k_chunks[layer], dim=0) for layer in self.layers}
        query_mask = torch.cat(rec.masks_seen["q"], dim=0)
        key_mask = torch.cat(rec.masks_seen["k"], dim=0)
        return CapturedQK(q=q, k=k, heads=self.heads, kv_heads=self.kv_heads, kv_index=self.kv_index,
                          layers=self.layers, scaling=float(rec.scaling), query_mask=query_mask, key_mask=key_mask)
