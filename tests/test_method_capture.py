"""QKCapture records the q/k the decoder really used, and only at the positions and heads asked for."""

from __future__ import annotations

import copy
import sys

import pytest
import torch

from kawhi.method.capture import QKCapture, decoder_attention_modules, resolve_layers
from kawhi.method.layout import visual_layout
from tests.test_method_tiny import ARCHS, make_batch, tiny_vl_model


@pytest.fixture(scope="module", params=ARCHS)
def model_and_batch(request):
    model = tiny_vl_model(request.param, request, attn="sdpa")
    return model, make_batch(model)


def _layouts(model, batch):
    config = model.config
    return visual_layout(batch["input_ids"], batch["image_grid_thw"], config.image_token_id,
                         config.vision_config.spatial_merge_size)


def _after_image_and_visual(model, batch):
    """Query mask: every position after the row's image; key mask: the visual tokens."""
    queries = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    for b, layout in enumerate(_layouts(model, batch)):
        queries[b, int(layout.visual_positions[-1]) + 1:] = True
    return queries, batch["input_ids"] == model.config.image_token_id


def test_final_layer_capture_reproduces_eager_attention_logits(model_and_batch):
    """The captured post-rotary q, k give the model's own eager attention logits q.k*scaling to 1e-5 (float32).

    Eager attention exposes probabilities p = softmax(logits + mask); within one query row,
    log p_v - mean_v log p_v = logit_v - mean_v logit_v over the visual keys, so the centred log
    probabilities are the logits up to the one constant per row that a softmax cannot see.
    """
    model, batch = model_and_batch
    n_heads = model.config.get_text_config().num_attention_heads
    heads = [0, n_heads - 1]
    query_mask, key_mask = _after_image_and_visual(model, batch)
    with torch.no_grad(), QKCapture(model, heads=heads, layers=[-1], query_mask=query_mask, key_mask=key_mask) as cap:
        model(**batch)
    captured = cap.captured()
    final = max(decoder_attention_modules(model))
    assert captured.layers == (final,)

    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        probabilities = eager(**batch, output_attentions=True).attentions[final]
    assert model.config.get_text_config()._attn_implementation == "sdpa"

    for b in range(batch["input_ids"].shape[0]):
        row = captured.row(b)
        ours = torch.einsum("qhd,khd->hqk", row.q, row.k) * captured.scaling
        theirs = probabilities[b][heads][:, row.q_positions][:, :, row.k_positions].log()
        centre = lambda x: x - x.mean(dim=-1, keepdim=True)  # noqa: E731
        torch.testing.assert_close(centre(ours), centre(theirs), atol=1e-5, rtol=0)


def test_only_the_asked_positions_and_kv_heads_are_kept(model_and_batch):
    model, batch = model_and_batch
    text = model.config.get_text_config()
    group = text.num_attention_heads // text.num_key_value_heads
    heads = [0, 1, text.num_attention_heads - 1]  # two share kv head 0
    query_mask, key_mask = _after_image_and_visual(model, batch)
    with torch.no_grad(), QKCapture(model, heads=heads, query_mask=query_mask, key_mask=key_mask) as cap:
        model(**batch)
    captured = cap.captured()
    layer = captured.layers[0]
    head_dim = decoder_attention_modules(model)[layer].head_dim
    assert captured.kv_heads == tuple(sorted({h // group for h in heads}))
    assert captured.q[layer].shape == (int(query_mask.sum()), len(heads), head_dim)
    assert captured.k[layer].shape == (int(key_mask.sum()), len(captured.kv_heads), head_dim)  # unexpanded
    assert not captured.q[layer].requires_grad
    assert captured.nbytes == 4 * head_dim * (int(query_mask.sum()) * 3 + int(key_mask.sum()) * 2)
    # GQA: the row view expands each query head's kv head
    row = captured.row(0)
    assert row.k.shape[1] == len(heads)
    torch.testing.assert_close(row.k[:, 0], row.k[:, 1], rtol=0, atol=0)

    with torch.no_grad(), QKCapture(model, heads=list(range(text.num_attention_heads))) as whole:
        model(**batch)
    full = whole.captured().row(0)
    positions = query_mask[0].nonzero()[:, 0]
    torch.testing.assert_close(row.q, full.q[positions][:, heads], rtol=0, atol=0)


def test_pre_rotary_capture_is_what_the_rotary_embedding_rotates(model_and_batch):
    """rotary='pre' gives the q/k the layer feeds to its rotary embedding: rotating them with the layer's own
    cos/sin gives the post-rotary capture; they differ from it, with the same norms."""
    model, batch = model_and_batch
    final = max(decoder_attention_modules(model))
    attention = decoder_attention_modules(model)[final]
    rope = {}
    hook = attention.register_forward_pre_hook(
        lambda module, args, kwargs: rope.update(cos_sin=kwargs["position_embeddings"]), with_kwargs=True)
    try:
        with torch.no_grad(), QKCapture(model, heads=[0, 1], rotary="pre") as pre:
            model(**batch)
    finally:
        hook.remove()
    with torch.no_grad(), QKCapture(model, heads=[0, 1]) as post:
        model(**batch)
    pre_qk, post_qk = pre.captured(), post.captured()
    batch_size, length = batch["input_ids"].shape
    q_pre = pre_qk.q[final].view(batch_size, length, 2, -1).transpose(1, 2)
    k_pre = pre_qk.k[final].view(batch_size, length, len(pre_qk.kv_heads), -1).transpose(1, 2)
    cos, sin = rope["cos_sin"]
    apply_rotary = sys.modules[type(attention).__module__].apply_rotary_pos_emb
    q_rot, k_rot = apply_rotary(q_pre, k_pre, cos, sin)
    torch.testing.assert_close(q_rot.transpose(1, 2).reshape(-1, 2, q_rot.shape[-1]), post_qk.q[final],
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(k_rot.transpose(1, 2).reshape(post_qk.k[final].shape), post_qk.k[final],
                               atol=1e-5, rtol=1e-5)
    assert not torch.allclose(pre_qk.q[final], post_qk.q[final], atol=1e-3)
    torch.testing.assert_close(pre_qk.q[final].norm(dim=-1), post_qk.q[final].norm(dim=-1), atol=1e-4, rtol=1e-5)


def test_capture_leaves_outputs_and_config_unchanged(model_and_batch):
    model, batch = model_and_batch
    with torch.no_grad():
        before = model(**batch).logits
        for rotary in ("post", "pre"):
            with QKCapture(model, heads=[1], layers=[0], rotary=rotary):
                during = model(**batch).logits
            assert torch.equal(before, during)
        after = model(**batch).logits
    assert torch.equal(before, after)
    assert model.config.get_text_config()._attn_implementation == "sdpa"
    attention = decoder_attention_modules(model)[0]
    assert not attention.q_proj._forward_hooks and not getattr(attention, "q_norm", attention.q_proj)._forward_hooks


def test_only_text_decoder_layers_are_captured(model_and_batch):
    model, batch = model_and_batch
    n_layers = model.config.get_text_config().num_hidden_layers
    assert sorted(decoder_attention_modules(model)) == list(range(n_layers))
    assert resolve_layers(model, [-1]) == (n_layers - 1,) and resolve_layers(model, "all") == tuple(range(n_layers))
    with torch.no_grad(), QKCapture(model, heads=[0], layers="all") as cap:
        model(**batch)
    # one chunk per decoder layer: the vision encoder's attention calls were not recorded
    assert {layer: len(chunks) for layer, chunks in cap._recorder.q_chunks.items()} == {i: 1 for i in range(n_layers)}


def test_capture_concatenates_micro_batches(model_and_batch):
    model, batch = model_and_batch
    query_mask, key_mask = _after_image_and_visual(model, batch)
    with torch.no_grad(), QKCapture(model, heads=[0], query_mask=query_mask, key_mask=key_mask) as whole:
        model(**batch)
    halves = [{key: value[i:i + 1] for key, value in batch.items() if key not in ("pixel_values", "image_grid_thw")}
              for i in range(2)]
    n_patches = [int(t * h * w) for t, h, w in batch["image_grid_thw"].tolist()]
    pixels = torch.split(batch["pixel_values"], n_patches)
    with torch.no_grad(), QKCapture(model, heads=[0], query_mask=query_mask, key_mask=key_mask) as chunked:
        for i, half in enumerate(halves):
            model(**half, pixel_values=pixels[i], image_grid_thw=batch["image_grid_thw"][i:i + 1])
    layer = whole.layers[0]
    torch.testing.assert_close(chunked.captured().q[layer], whole.captured().q[layer], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(chunked.captured().k[layer], whole.captured().k[layer], atol=1e-5, rtol=1e-5)
    with torch.no_grad(), QKCapture(model, heads=[0], query_mask=query_mask[:1], key_mask=key_mask[:1]):
        with pytest.raises(RuntimeError, match="does not fit"):
            model(**batch)


def test_capture_rejects_bad_heads_layers_and_nesting(model_and_batch):
    model, _ = model_and_batch
    with pytest.raises(ValueError, match="out of range"):
        QKCapture(model, heads=[999])
    with pytest.raises(ValueError, match="kawhi.layers"):
        QKCapture(model, heads=[0], layers=[999])
    with pytest.raises(ValueError, match="kawhi.rotary"):
        QKCapture(model, heads=[0], rotary="middle")
    for rotary in ("post", "pre"):
        with QKCapture(model, heads=[0], rotary=rotary):
            with pytest.raises(RuntimeError, match="do not nest"):
                QKCapture(model, heads=[0]).__enter__()
    assert model.config.get_text_config()._attn_implementation == "sdpa"
