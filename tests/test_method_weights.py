"""completion_weights: the batch entry point, on hand-made q/k and on a tiny model's own capture."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from kawhi.config import KawhiSettings
from kawhi.method.capture import CapturedQK, QKCapture
from kawhi.method.credit import harmonic_weights, kq_alignment, segment_means
from kawhi.method.regions import sguf_select, visual_saliency
from kawhi.method.weights import STAT_KEYS, completion_weights
from tests.test_method_tiny import make_batch, tiny_vl_model

IMAGE, DELIM = 90, 7
CONFIG = SimpleNamespace(image_token_id=IMAGE, vision_config=SimpleNamespace(spatial_merge_size=2))


class PieceTokenizer:
    """Decodes id DELIM to the paragraph delimiter and any other id i to 'w<i> '."""

    def batch_decode(self, ids, **_):
        return ["".join("\n\n" if i == DELIM else f"w{i} " for i in row) for row in ids]


def _synthetic(batch=3, width=12, heads=4, dim=8, seed=0, image_rows=None):
    """Rows: 3 pad/prompt tokens, a 4x4-patch image (2x2 merged = 4 tokens), 3 question tokens, completion."""
    g = torch.Generator().manual_seed(seed)
    image_rows = list(range(batch)) if image_rows is None else image_rows
    prompt = []
    for b in range(batch):
        visual = [IMAGE] * 4 if b in image_rows else [11] * 4
        prompt.append([0, 0, 12] + visual + [13, 14, 15])
    completion = torch.randint(20, 80, (batch, width), generator=g)
    completion[:, 3] = DELIM
    completion[:, 8] = DELIM
    mask = torch.ones(batch, width, dtype=torch.long)
    mask[-1, 10:] = 0  # last row: right-padded completion
    input_ids = torch.cat([torch.tensor(prompt), completion], dim=1)
    length = input_ids.shape[1]
    q = {0: torch.randn(batch, heads, length, dim, generator=g), 1: torch.randn(batch, heads, length, dim, generator=g)}
    k = {0: torch.randn(batch, heads, length, dim, generator=g), 1: torch.randn(batch, heads, length, dim, generator=g)}
    captured = CapturedQK(q=q, k=k, heads=tuple(range(heads)), layers=(0, 1), scaling=dim**-0.5)
    grid = torch.tensor([[1, 4, 4]] * len(image_rows))
    return captured, input_ids, grid, mask, completion


def _weights(settings=KawhiSettings(), **kwargs):
    captured, input_ids, grid, mask, completion = _synthetic(**kwargs)
    out = completion_weights(captured, input_ids, grid, mask, completion, PieceTokenizer(), settings, CONFIG)
    return out, mask


def test_weights_shape_padding_mean_bounds_and_stats():
    out, mask = _weights()
    w = out.weights
    assert w.shape == mask.shape and w.dtype == torch.float32 and not w.requires_grad
    assert bool((w[mask == 0] == 1.0).all())
    for b in range(w.shape[0]):
        valid = w[b][mask[b].bool()]
        assert abs(float(valid.mean()) - 1.0) < 1e-6
        assert float(valid.min()) >= 0.5 - 1e-6 and float(valid.max()) <= 2.0 + 1e-6
        assert not torch.allclose(valid, torch.ones_like(valid))  # random q/k: weights really move
    assert [set(s) for s in out.stats] == [set(STAT_KEYS)] * 3
    assert [s["n_segments"] for s in out.stats] == [3.0, 3.0, 3.0]
    assert all(0 < s["critical_fraction"] <= 0.25 for s in out.stats)
    assert set(out.mean_stats()) == {f"kawhi/{k}" for k in STAT_KEYS}
    # paragraph granularity: one weight per paragraph
    assert len(set(w[0, :4].tolist())) == 1 and len(set(w[0, 4:9].tolist())) == 1


def test_matches_the_formulas_step_by_step():
    captured, input_ids, grid, mask, completion = _synthetic()
    out = completion_weights(captured, input_ids, grid, mask, completion, PieceTokenizer(), KawhiSettings(), CONFIG)
    q, k = captured.stacked()
    b, visual, question = 1, torch.arange(3, 7), torch.arange(7, 10)
    completion_positions = torch.arange(10, 22)
    saliency = visual_saliency(q[b][:, question], k[b][:, visual], captured.scaling)
    critical = sguf_select(saliency.view(2, 2)).view(-1)
    a_t = kq_alignment(q[b][:, completion_positions], k[b][:, visual], critical, captured.scaling)
    ids = torch.tensor([0] * 4 + [1] * 5 + [2] * 3)
    a_p, n_p = segment_means(a_t, ids)
    torch.testing.assert_close(out.weights[b], harmonic_weights(a_p, n_p)[ids])


@pytest.mark.parametrize("change", [{"enabled": False}, {"lam": 0.0}])
def test_disabled_or_lam_zero_gives_ones(change):
    out, _ = _weights(dataclasses.replace(KawhiSettings(), **change))
    assert torch.equal(out.weights, torch.ones_like(out.weights))


def test_single_segment_and_no_image_give_ones():
    out, _ = _weights(KawhiSettings(delimiter="@@"))  # no delimiter in the text: one paragraph
    assert torch.equal(out.weights, torch.ones_like(out.weights))
    out, _ = _weights(image_rows=[0, 2])
    assert torch.equal(out.weights[1], torch.ones(12))
    assert out.stats[1]["critical_fraction"] == 0.0 and out.saliency[1] == []
    assert not torch.equal(out.weights[0], torch.ones(12))


def test_negative_uniform_keeps_ones_for_negative_advantages():
    captured, input_ids, grid, mask, completion = _synthetic()
    args = (captured, input_ids, grid, mask, completion, PieceTokenizer())
    advantages = torch.tensor([1.0, -0.5, 0.2])
    same = completion_weights(*args, KawhiSettings(), CONFIG, advantages=advantages).weights
    uniform = completion_weights(*args, KawhiSettings(negative="uniform"), CONFIG, advantages=advantages).weights
    assert torch.equal(uniform[1], torch.ones(12))
    assert torch.equal(uniform[[0, 2]], same[[0, 2]]) and not torch.equal(same[1], torch.ones(12))


def test_region_ablations_use_as_many_tokens_and_token_granularity():
    base, _ = _weights()
    for regions in ("random", "inverse"):
        out, _ = _weights(KawhiSettings(regions=regions))
        assert [s["critical_fraction"] for s in out.stats] == [s["critical_fraction"] for s in base.stats]
    inverse, _ = _weights(KawhiSettings(regions="inverse"))
    assert all(not torch.equal(m1[0], m2[0]) for m1, m2 in zip(base.masks, inverse.masks))
    seeded = [_weights(KawhiSettings(regions="random"))[0].weights for _ in range(2)]
    assert torch.equal(seeded[0], seeded[1])
    tokens, mask = _weights(KawhiSettings(granularity="token"))
    assert [s["n_segments"] for s in tokens.stats] == mask.sum(dim=1).float().tolist()
    kk, _ = _weights(KawhiSettings(metric="kk"))
    assert not torch.allclose(kk.weights, base.weights)


def test_with_texts_gives_segments_and_their_weights():
    captured, input_ids, grid, mask, completion = _synthetic()
    out = completion_weights(captured, input_ids, grid, mask, completion, PieceTokenizer(), KawhiSettings(), CONFIG,
                             with_texts=True)
    assert len(out.segments[0]) == 3 and out.segments[0][0].endswith("\n\n")
    assert out.segment_weights[0] == pytest.approx(out.weights[0, [0, 4, 9]].tolist())


def test_mismatched_capture_is_refused():
    captured, input_ids, grid, mask, completion = _synthetic()
    with pytest.raises(ValueError, match="capture the forward pass"):
        completion_weights(captured, input_ids[:, 1:], grid, mask, completion, PieceTokenizer(), KawhiSettings(),
                           CONFIG)


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
def test_tiny_model_capture_to_weights(arch, request):
    model = tiny_vl_model(arch, request)
    width = 10
    batch = make_batch(model, completion_width=width)
    completion = batch["input_ids"][:, -width:].clone()
    completion[completion == DELIM] = DELIM + 1  # exactly one paragraph cut, at position 4
    completion[:, 4] = DELIM
    batch["input_ids"][:, -width:] = completion
    mask = torch.ones_like(completion)
    text = model.config.get_text_config()
    with torch.no_grad(), QKCapture(model, heads=[0, text.num_attention_heads - 1]) as cap:
        model(**batch)
    out = completion_weights(cap.captured(), batch["input_ids"], batch["image_grid_thw"], mask, completion,
                             PieceTokenizer(), KawhiSettings(), model.config)
    assert [len(m) for m in out.masks] == [1, 1]
    assert [tuple(m[0].shape) for m in out.masks] == [(2, 3), (2, 2)]
    for b in range(2):
        assert abs(float(out.weights[b].mean()) - 1.0) < 1e-6
        assert out.stats[b]["n_segments"] == 2.0


def test_kk_matches_the_formula_step_by_step():
    from kawhi.method.credit import kk_alignment

    captured, input_ids, grid, mask, completion = _synthetic()
    settings = KawhiSettings(metric="kk")
    out = completion_weights(captured, input_ids, grid, mask, completion, PieceTokenizer(), settings, CONFIG)
    q, k = captured.stacked()
    b, visual, question = 0, torch.arange(3, 7), torch.arange(7, 10)
    saliency = visual_saliency(q[b][:, question], k[b][:, visual], captured.scaling)
    critical = sguf_select(saliency.view(2, 2)).view(-1)
    a_t = kk_alignment(k[b][:, 10:22], k[b][:, visual], critical)
    ids = torch.tensor([0] * 4 + [1] * 5 + [2] * 3)
    a_p, n_p = segment_means(a_t, ids)
    torch.testing.assert_close(out.weights[b], harmonic_weights(a_p, n_p)[ids])


def test_chunked_attention_gives_the_same_weights(monkeypatch):
    import kawhi.method.weights as weights_module

    captured, input_ids, grid, mask, completion = _synthetic()
    args = (captured, input_ids, grid, mask, completion, PieceTokenizer())
    for metric in ("kq", "kk"):
        whole = completion_weights(*args, KawhiSettings(metric=metric), CONFIG).weights
        monkeypatch.setattr(weights_module, "ATTENTION_BUDGET", 64)  # one layer, one row per chunk
        chunked = completion_weights(*args, KawhiSettings(metric=metric), CONFIG).weights
        monkeypatch.undo()
        torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=1e-6)
