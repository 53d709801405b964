"""kawhi.method.heads.mask_heads: zeroes one query head's output in every decoder layer, leaves no trace."""

from __future__ import annotations

import copy

import pytest
import torch
from PIL import Image

from kawhi.data.prompts import build_messages
from kawhi.method.heads import decoder_layers, head_dim, mask_heads, num_query_heads


@pytest.fixture(scope="module")
def model_and_batch(tiny_model_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    processor.tokenizer.padding_side = "left"
    text = processor.apply_chat_template(build_messages("Is the shape red?", [], yes_no=True),
                                         add_generation_prompt=True, tokenize=False)
    images = [[Image.new("RGB", (32, 32), (200, 30, 30))], [Image.new("RGB", (48, 32), (30, 30, 200))]]
    batch = processor(text=[text, text + " Answer briefly."], images=images, padding=True, return_tensors="pt")
    return model, dict(batch)


def logits(model, batch):
    with torch.no_grad():
        return model(**batch, use_cache=False).logits


def test_masking_no_heads_is_bit_identical(model_and_batch):
    model, batch = model_and_batch
    before = logits(model, batch)
    with mask_heads(model, []):
        inside = logits(model, batch)
    assert torch.equal(before, inside)


def test_masking_a_head_changes_logits_and_leaves_the_model_unchanged(model_and_batch):
    model, batch = model_and_batch
    before = logits(model, batch)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with mask_heads(model, [1]):
        masked = logits(model, batch)
    after = logits(model, batch)
    assert not torch.allclose(before, masked)
    assert torch.equal(before, after)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    for layer in decoder_layers(model):
        assert not layer.self_attn.o_proj._forward_pre_hooks


def test_masking_equals_zeroing_the_heads_o_proj_columns(model_and_batch):
    """The mask removes exactly head h's contribution: like zeroing its o_proj input columns."""
    model, batch = model_and_batch
    heads = [0, num_query_heads(model) - 1]
    d = head_dim(model)
    zeroed = copy.deepcopy(model)
    with torch.no_grad():
        for layer in decoder_layers(zeroed):
            for h in heads:
                layer.self_attn.o_proj.weight[:, h * d:(h + 1) * d] = 0
    with mask_heads(model, heads):
        masked = logits(model, batch)
    torch.testing.assert_close(masked, logits(zeroed, batch), rtol=1e-5, atol=1e-5)


def test_mask_works_in_eager_and_sdpa(model_and_batch):
    model, batch = model_and_batch
    model = copy.deepcopy(model)
    results = {}
    for implementation in ("eager", "sdpa"):
        model.set_attn_implementation(implementation)
        with mask_heads(model, [2]):
            results[implementation] = logits(model, batch)
    real = batch["attention_mask"].bool()  # padded positions attend to nothing; kernels differ there
    torch.testing.assert_close(results["eager"][real], results["sdpa"][real], rtol=1e-4, atol=1e-4)
    with mask_heads(model, []):
        unmasked = logits(model, batch)
    assert not torch.allclose(unmasked[real], results["sdpa"][real])


def test_hooks_are_removed_on_exceptions_and_bad_heads_are_refused(model_and_batch):
    model, _ = model_and_batch
    with pytest.raises(RuntimeError, match="boom"):
        with mask_heads(model, [0]):
            raise RuntimeError("boom")
    assert all(not layer.self_attn.o_proj._forward_pre_hooks for layer in decoder_layers(model))
    with pytest.raises(ValueError, match="out of range"):
        with mask_heads(model, [num_query_heads(model)]):
            pass


def test_gradients_of_masked_heads_are_zero(model_and_batch):
    """The mask is differentiable (used inside training too): no gradient reaches a masked head's values."""
    model, batch = model_and_batch
    model = copy.deepcopy(model)
    d = head_dim(model)
    kv_group = num_query_heads(model) // model.config.get_text_config().num_key_value_heads
    masked = list(range(kv_group))  # every query head reading kv head 0
    with mask_heads(model, masked):
        model(**batch, use_cache=False).logits.float().pow(2).mean().backward()
    v_grad = decoder_layers(model)[-1].self_attn.v_proj.weight.grad
    assert torch.count_nonzero(v_grad[:d]) == 0
    assert torch.count_nonzero(v_grad[d:]) > 0
