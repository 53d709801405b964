"""QKCapture records the q/k the decoder really used: it reproduces eager attention probabilities."""

from __future__ import annotations

import copy

import pytest
import torch

from kawhi.method.capture import QKCapture, decoder_attention_modules
from kawhi.method.layout import visual_layout
from tests.test_method_tiny import ARCHS, make_batch, tiny_vl_model


@pytest.fixture(scope="module", params=ARCHS)
def model_and_batch(request):
    model = tiny_vl_model(request.param, request, attn="sdpa")
    return model, make_batch(model)


def test_capture_reproduces_eager_attention_on_visual_keys(model_and_batch):
    model, batch = model_and_batch
    heads = [0, model.config.get_text_config().num_attention_heads - 1]
    with torch.no_grad(), QKCapture(model, heads=heads) as cap:
        model(**batch)
    captured = cap.captured()

    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = eager(**batch, output_attentions=True).attentions
    assert model.config.get_text_config()._attn_implementation == "sdpa"

    config = model.config
    layouts = visual_layout(batch["input_ids"], batch["image_grid_thw"], config.image_token_id,
                            config.vision_config.spatial_merge_size)
    length = batch["input_ids"].shape[1]
    for b, layout in enumerate(layouts):
        visual = layout.visual_positions
        queries = torch.arange(int(visual[-1]) + 1, length)  # every token that can see the whole image
        for layer in captured.layers:
            q = captured.q[layer][b][:, queries]
            k = captured.k[layer][b][:, visual]
            ours = torch.softmax(q @ k.transpose(-1, -2) * captured.scaling, dim=-1)
            theirs = attentions[layer][b][heads][:, queries][:, :, visual]
            theirs = theirs / theirs.sum(dim=-1, keepdim=True)
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_capture_leaves_outputs_and_config_unchanged(model_and_batch):
    model, batch = model_and_batch
    with torch.no_grad():
        before = model(**batch).logits
        with QKCapture(model, heads=[1], layers=[0]) as cap:
            during = model(**batch).logits
        after = model(**batch).logits
    assert torch.equal(before, during) and torch.equal(before, after)
    assert model.config.get_text_config()._attn_implementation == "sdpa"
    captured = cap.captured()
    assert captured.layers == (0,) and list(captured.q) == [0]
    batch_size, length = batch["input_ids"].shape
    head_dim = decoder_attention_modules(model)[0].head_dim
    assert captured.q[0].shape == (batch_size, 1, length, head_dim)
    assert not captured.q[0].requires_grad


def test_capture_only_text_decoder_layers(model_and_batch):
    model, batch = model_and_batch
    n_layers = model.config.get_text_config().num_hidden_layers
    assert sorted(decoder_attention_modules(model)) == list(range(n_layers))
    with torch.no_grad(), QKCapture(model, heads=[0]) as cap:
        model(**batch)
    # one chunk per decoder layer: the vision encoder's attention calls were not recorded
    assert {layer: len(chunks) for layer, chunks in cap._recorder.q_chunks.items()} == {i: 1 for i in range(n_layers)}


def test_capture_maps_gqa_heads_to_their_kv_head(model_and_batch):
    model, batch = model_and_batch
    text = model.config.get_text_config()
    group = text.num_attention_heads // text.num_key_value_heads
    heads = list(range(text.num_attention_heads))
    with torch.no_grad(), QKCapture(model, heads=heads) as cap:
        model(**batch)
    k = cap.captured().k[0]
    for h in heads:
        torch.testing.assert_close(k[:, h], k[:, (h // group) * group], rtol=0, atol=0)


def test_capture_concatenates_micro_batches(model_and_batch):
    model, batch = model_and_batch
    with torch.no_grad(), QKCapture(model, heads=[0]) as whole:
        model(**batch)
    halves = [{key: value[i:i + 1] for key, value in batch.items() if key not in ("pixel_values", "image_grid_thw")}
              for i in range(2)]
    n_patches = [int(t * h * w) for t, h, w in batch["image_grid_thw"].tolist()]
    pixels = torch.split(batch["pixel_values"], n_patches)
    with torch.no_grad(), QKCapture(model, heads=[0]) as chunked:
        for i, half in enumerate(halves):
            model(**half, pixel_values=pixels[i], image_grid_thw=batch["image_grid_thw"][i:i + 1])
    torch.testing.assert_close(chunked.captured().q[0], whole.captured().q[0], atol=1e-5, rtol=1e-5)


def test_capture_rejects_bad_heads_and_nesting(model_and_batch):
    model, _ = model_and_batch
    with pytest.raises(ValueError, match="out of range"):
        QKCapture(model, heads=[999])
    with pytest.raises(ValueError, match="kawhi.layers"):
        QKCapture(model, heads=[0], layers=[999])
    with QKCapture(model, heads=[0]):
        with pytest.raises(RuntimeError, match="do not nest"):
            QKCapture(model, heads=[0]).__enter__()
    assert model.config.get_text_config()._attn_implementation == "sdpa"
