"""completion_weights: the batch entry point, against the public functions step by step and on a tiny model."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from kawhi.config import KawhiSettings
from kawhi.method.capture import CapturedQK, QKCapture
from kawhi.method.credit import alignment, paragraph_weights, segment_means
from kawhi.method.selection import ImageSelector, attention_selection, received_attention
from kawhi.method.sguf import sguf_select
from kawhi.method.weights import STAT_KEYS, capture_masks, completion_weights
from tests.test_method_tiny import make_batch, tiny_vl_model

IMAGE, DELIM, STOP = 90, 7, 8
PATCH, MERGE = 4, 2  # 8-pixel token squares
GRID = (1, 6, 8)  # patches: a 3 x 4 token grid, 24 x 32 pixels
N_VISUAL = 12
HEADS, KV_HEADS, DIM = 4, 2, 8
CONFIG = SimpleNamespace(image_token_id=IMAGE, vision_config=SimpleNamespace(spatial_merge_size=MERGE,
                                                                            patch_size=PATCH))
PARAGRAPHS = torch.tensor([0] * 4 + [1] * 5 + [2] * 3)


class PieceTokenizer:
    """Decodes DELIM to the paragraph delimiter, STOP to '. ' and any other id i to 'w<i> '."""

    def batch_decode(self, ids, **_):
        return ["".join({DELIM: "\n\n", STOP: ". "}.get(i, f"w{i} ") for i in row) for row in ids]


def block_image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 2, (6, 8))  # 4-pixel blocks of two colours: edges inside some tokens only
    colours = np.array([[240, 240, 240], [30, 30, 200]], dtype=np.uint8)
    return np.kron(colours[blocks], np.ones((4, 4, 1), dtype=np.uint8))


def synthetic(batch=3, width=12, seed=0, image_rows=None, equal_queries=False):
    """Rows: 2 pads, 1 prompt token, a 3x4-token image, 3 question tokens, then the completion; q/k as a
    capture with ``capture_masks`` would hold them (response queries, visual keys, response keys for kk)."""
    g = torch.Generator().manual_seed(seed)
    image_rows = list(range(batch)) if image_rows is None else image_rows
    prompt = [[0, 0, 12] + ([IMAGE] if b in image_rows else [11]) * N_VISUAL + [13, 14, 15] for b in range(batch)]
    completion = torch.randint(20, 80, (batch, width), generator=g)
    completion[:, 3] = DELIM
    completion[:, 8] = DELIM
    mask = torch.ones(batch, width, dtype=torch.long)
    mask[-1, 10:] = 0  # last row: right-padded completion
    input_ids = torch.cat([torch.tensor(prompt), completion], dim=1)
    query_mask, key_mask = capture_masks(input_ids, width, IMAGE, KawhiSettings(metric="kk"))
    q = torch.randn(int(query_mask.sum()), HEADS, DIM, generator=g)
    if equal_queries:
        q[:] = q[0]
    k = torch.randn(int(key_mask.sum()), KV_HEADS, DIM, generator=g)
    captured = CapturedQK(q={1: q}, k={1: k}, heads=tuple(range(HEADS)), kv_heads=(0, 1),
                          kv_index=torch.tensor([0, 0, 1, 1]), layers=(1,), scaling=DIM**-0.5,
                          query_mask=query_mask, key_mask=key_mask)
    grid = torch.tensor([GRID] * len(image_rows))
    images = [block_image(b) for b in image_rows]
    return captured, input_ids, grid, images, mask, completion


def weights(settings=KawhiSettings(), **kwargs):
    captured, input_ids, grid, images, mask, completion = synthetic(**kwargs)
    out = completion_weights(captured, input_ids, grid, images, mask, completion, PieceTokenizer(), settings, CONFIG,
                             selector=ImageSelector())
    return out, mask


def expected_row(captured, b, selected, metric="kq", settings=KawhiSettings(), paragraphs=PARAGRAPHS):
    """One row by the public functions: alignment -> paragraph means -> Eq. 15 -> tokens."""
    row = captured.row(b)
    width = len(paragraphs)
    probe = row.q if metric == "kq" else row.k[N_VISUAL:]  # keys: the visual ones, then the response's
    alpha = alignment(probe[:width], row.k[:N_VISUAL], torch.as_tensor(selected).reshape(-1))
    w = paragraph_weights(segment_means(alpha, paragraphs), tau=settings.tau, lam=settings.lam,
                          w_min=settings.w_min, w_max=settings.w_max)
    return w[paragraphs]


@pytest.mark.parametrize("metric", ["kq", "kk"])
def test_matches_the_public_functions_step_by_step(metric):
    settings = KawhiSettings(metric=metric)
    captured, input_ids, grid, images, mask, completion = synthetic()
    out = completion_weights(captured, input_ids, grid, images, mask, completion, PieceTokenizer(), settings, CONFIG,
                             selector=ImageSelector())
    for b in range(2):  # full rows
        selected = sguf_select(images[b], PATCH * MERGE).selected
        np.testing.assert_array_equal(out.selections[b][0].selected, selected)
        torch.testing.assert_close(out.weights[b], expected_row(captured, b, selected, metric))
    # the padded row: its two padding tokens keep weight 1, the paragraphs are 4 + 5 + 1 tokens
    selected = sguf_select(images[2], PATCH * MERGE).selected
    short = PARAGRAPHS[:10]
    torch.testing.assert_close(out.weights[2, :10], expected_row(captured, 2, selected, metric, paragraphs=short))
    assert out.weights[2, 10:].tolist() == [1.0, 1.0]


def test_equal_alignment_gives_w_min_plus_range_over_m():
    out, _ = weights(equal_queries=True)
    assert out.weights[0].tolist() == pytest.approx([0.1 + 0.9 / 3] * 12, abs=1e-6)
    out, _ = weights(KawhiSettings(w_min=0.2, w_max=0.8), equal_queries=True)
    assert out.weights[1].tolist() == pytest.approx([0.2 + 0.6 / 3] * 12, abs=1e-6)


def test_stats_bounds_and_one_paragraph():
    out, mask = weights()
    w = out.weights
    assert w.shape == mask.shape and w.dtype == torch.float32 and not w.requires_grad
    assert float(w[mask.bool()].min()) >= 0.1 and float(w[mask.bool()].max()) <= 1.0
    assert float(w[0, [0, 4, 9]].sum()) == pytest.approx(3 * 0.1 + 0.9, abs=1e-6)  # the w~ of Eq. 15 sum to 1
    assert [set(s) for s in out.stats] == [set(STAT_KEYS)] * 3
    assert [s["n_segments"] for s in out.stats] == [3.0, 3.0, 3.0]
    assert all(0 < s["selected_fraction"] <= 1 for s in out.stats)
    assert set(out.mean_stats()) == {f"kawhi/{k}" for k in STAT_KEYS}
    assert len(set(w[0, :4].tolist())) == 1 and len(set(w[0, 4:9].tolist())) == 1
    single, _ = weights(KawhiSettings(delimiter="@@"))  # no delimiter in the text: one paragraph keeps w_max
    assert torch.equal(single.weights, torch.ones_like(single.weights))


def test_disabled_gives_ones_and_normalize_mean_gives_unit_token_mean():
    off, _ = weights(KawhiSettings(enabled=False))
    assert torch.equal(off.weights, torch.ones_like(off.weights))
    paper, mask = weights()
    mean, _ = weights(KawhiSettings(normalize="mean"))
    for b in range(3):
        valid = mask[b].bool()
        assert float(mean.weights[b][valid].mean()) == pytest.approx(1.0, abs=1e-6)
        ratio = mean.weights[b][valid] / paper.weights[b][valid]
        torch.testing.assert_close(ratio, ratio[:1].expand_as(ratio))  # a rescaling, nothing else
        assert bool((mean.weights[b][~valid] == 1.0).all())


def test_rows_without_image_get_uniform_weights():
    out, _ = weights(image_rows=[0, 2])
    assert out.selections[1] == [] and out.stats[1]["selected_fraction"] == 0.0
    assert out.weights[1].tolist() == pytest.approx([0.4] * 12)  # alpha = 0 everywhere: equal paragraphs
    assert not torch.allclose(out.weights[0], torch.full((12,), 0.4))


def test_region_ablations():
    base, _ = weights()
    sguf = [row[0].selected for row in base.selections]
    everything, _ = weights(KawhiSettings(regions="all"))
    assert all(row[0].selected.all() and row[0].sguf is None for row in everything.selections)
    inverse, _ = weights(KawhiSettings(regions="inverse"))
    assert all(np.array_equal(row[0].selected, ~s) for row, s in zip(inverse.selections, sguf))
    random, _ = weights(KawhiSettings(regions="random"))
    again, _ = weights(KawhiSettings(regions="random"))
    for row, s, twin in zip(random.selections, sguf, again.selections):
        assert row[0].selected.sum() == s.sum()
        np.testing.assert_array_equal(row[0].selected, twin[0].selected)  # seeded by seed and image
    assert not torch.allclose(inverse.weights, base.weights)


def test_attention_selection_keeps_the_most_attended_half():
    settings = KawhiSettings(regions="attention", attention_fraction=0.5)
    captured, input_ids, grid, images, mask, completion = synthetic()
    query_mask, key_mask = capture_masks(input_ids, 12, IMAGE, settings, grid, MERGE)
    assert query_mask[:, 15:18].all() and not query_mask[:, :15].any()  # the question tokens, then the response
    g = torch.Generator().manual_seed(1)
    q = torch.randn(int(query_mask.sum()), HEADS, DIM, generator=g)
    k = torch.randn(int(key_mask.sum()), KV_HEADS, DIM, generator=g)
    captured = dataclasses.replace(captured, q={1: q}, k={1: k}, query_mask=query_mask, key_mask=key_mask)
    out = completion_weights(captured, input_ids, grid, None, mask, completion, PieceTokenizer(), settings, CONFIG)
    row = captured.row(0)
    received = received_attention(row.q[:3], row.k, captured.scaling)
    expected = attention_selection(received, [N_VISUAL], 0.5).numpy().reshape(3, 4)
    np.testing.assert_array_equal(out.selections[0][0].selected, expected)
    assert expected.sum() == 6 and out.selections[0][0].sguf is None
    assert received[torch.as_tensor(expected.ravel())].min() >= received[~torch.as_tensor(expected.ravel())].max()
    alpha = alignment(row.q[3:], row.k, torch.as_tensor(expected.ravel()))  # the row's queries: question, response
    w = paragraph_weights(segment_means(alpha, PARAGRAPHS))[PARAGRAPHS]
    torch.testing.assert_close(out.weights[0], w)


def test_token_and_sentence_granularity():
    tokens, mask = weights(KawhiSettings(granularity="token"))
    assert [s["n_segments"] for s in tokens.stats] == mask.sum(dim=1).float().tolist()
    captured, input_ids, grid, images, mask, completion = synthetic()
    completion[:, 1] = STOP  # '. ' ends a sentence inside the first paragraph
    input_ids[:, -12:] = completion
    out = completion_weights(captured, input_ids, grid, images, mask, completion, PieceTokenizer(),
                             KawhiSettings(granularity="sentence"), CONFIG, selector=ImageSelector())
    assert [s["n_segments"] for s in out.stats] == [4.0, 4.0, 4.0]


def test_with_texts_gives_segments_and_their_weights():
    captured, input_ids, grid, images, mask, completion = synthetic()
    out = completion_weights(captured, input_ids, grid, images, mask, completion, PieceTokenizer(), KawhiSettings(),
                             CONFIG, with_texts=True)
    assert len(out.segments[0]) == 3 and out.segments[0][0].endswith("\n\n")
    assert out.segment_weights[0] == pytest.approx(out.weights[0, [0, 4, 9]].tolist())


def test_mismatches_are_refused():
    captured, input_ids, grid, images, mask, completion = synthetic()
    args = (mask, completion, PieceTokenizer(), KawhiSettings(), CONFIG)
    with pytest.raises(ValueError, match="capture the forward pass"):
        completion_weights(captured, input_ids[:, 1:], grid, images, *args)
    with pytest.raises(ValueError, match="token grid"):
        completion_weights(captured, input_ids, grid, [im[:16] for im in images], *args)
    with pytest.raises(ValueError, match="needs the batch's 3 images"):
        completion_weights(captured, input_ids, grid, None, *args)


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("change", [{}, {"metric": "kk"}, {"rotary": "pre"}, {"regions": "attention"},
                                    {"heads": "all"}, {"layers": "all"}])
def test_tiny_model_capture_to_weights(arch, change, request):
    """The real capture of a tiny model feeds completion_weights for every variant."""
    from kawhi.method.pixels import images_from_pixel_values

    settings = dataclasses.replace(KawhiSettings(), **change)
    model = tiny_vl_model(arch, request)
    width = 10
    batch = make_batch(model, completion_width=width)
    completion = batch["input_ids"][:, -width:].clone()
    completion[completion == DELIM] = DELIM + 1
    completion[:, 4] = DELIM  # exactly one paragraph cut
    batch["input_ids"][:, -width:] = completion
    mask = torch.ones_like(completion)
    vision = model.config.vision_config
    processor = SimpleNamespace(patch_size=vision.patch_size, merge_size=vision.spatial_merge_size,
                                temporal_patch_size=vision.temporal_patch_size, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    images = images_from_pixel_values(batch["pixel_values"], batch["image_grid_thw"], processor)
    query_mask, key_mask = capture_masks(batch["input_ids"], width, model.config.image_token_id, settings,
                                         batch["image_grid_thw"], vision.spatial_merge_size)
    n_heads = model.config.get_text_config().num_attention_heads
    heads = list(range(n_heads)) if settings.heads == "all" else [0, n_heads - 1]
    with torch.no_grad(), QKCapture(model, heads, settings.layers, settings.rotary, query_mask, key_mask) as cap:
        model(**batch)
    out = completion_weights(cap.captured(), batch["input_ids"], batch["image_grid_thw"], images, mask, completion,
                             PieceTokenizer(), settings, model.config, selector=ImageSelector())
    assert [tuple(s[0].selected.shape) for s in out.selections] == [(2, 3), (2, 2)]
    for b in range(2):
        assert out.stats[b]["n_segments"] == 2.0
        first, second = out.weights[b, :5], out.weights[b, 5:]
        assert len(set(first.tolist())) == 1 and len(set(second.tolist())) == 1
        assert float(first[0] + second[0]) == pytest.approx(0.2 + 0.9, abs=1e-5)  # Eq. 15 sums to w_min M + range
