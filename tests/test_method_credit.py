"""Harmonic credit weights and alignment metrics (METHOD.md sections 4-5): invariants, with hypothesis."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kawhi.method.credit import harmonic_weights, kk_alignment, kq_alignment, segment_means

alignments = st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=1, max_size=40)
lams = st.floats(min_value=0.0, max_value=1.0)
bounds = st.tuples(st.floats(min_value=0.05, max_value=1.0), st.floats(min_value=1.0, max_value=5.0))


def _case(draw_alignment, draw_lengths):
    a = torch.tensor(draw_alignment, dtype=torch.float64)
    n = torch.tensor(draw_lengths[: len(draw_alignment)] + [1] * max(0, len(draw_alignment) - len(draw_lengths)))
    return a, n


@settings(max_examples=150, deadline=None)
@given(alignments, st.lists(st.integers(1, 50), min_size=1, max_size=40), lams, bounds)
def test_weights_have_unit_token_mean_and_stay_in_bounds(a_list, n_list, lam, lo_hi):
    a, n = _case(a_list, n_list)
    lo, hi = lo_hi
    w = harmonic_weights(a, n, lam=lam, w_min=lo, w_max=hi)
    assert w.shape == a.shape
    assert abs(float((w * n).sum() / n.sum()) - 1.0) < 1e-6
    assert float(w.min()) >= lo - 1e-9 and float(w.max()) <= hi + 1e-9


@settings(max_examples=200, deadline=None)
@given(alignments, st.lists(st.integers(1, 50), min_size=1, max_size=40))
def test_float32_weights_keep_unit_mean(a_list, n_list):
    a, n = _case(a_list, n_list)
    w = harmonic_weights(a.float(), n)
    assert w.dtype == torch.float32
    assert abs(float((w.double() * n).sum() / n.sum()) - 1.0) < 1e-6


@given(alignments, st.lists(st.integers(1, 50), min_size=1, max_size=40))
def test_lam_zero_gives_ones(a_list, n_list):
    a, n = _case(a_list, n_list)
    assert torch.equal(harmonic_weights(a, n, lam=0.0), torch.ones_like(a))


@given(st.floats(min_value=0.0, max_value=1.0), st.integers(1, 30), st.integers(1, 100))
def test_constant_alignment_or_one_segment_gives_ones(value, n_segments, length):
    a = torch.full((n_segments,), value, dtype=torch.float64)
    assert torch.equal(harmonic_weights(a, torch.full((n_segments,), length)), torch.ones_like(a))
    assert torch.equal(harmonic_weights(a[:1] + 0.3, torch.tensor([length])), torch.ones(1, dtype=torch.float64))


@settings(max_examples=200, deadline=None)
@given(alignments, st.lists(st.integers(1, 50), min_size=1, max_size=40), lams, st.randoms(use_true_random=False))
def test_permuting_segments_permutes_weights(a_list, n_list, lam, rnd):
    a, n = _case(a_list, n_list)
    perm = list(range(len(a)))
    rnd.shuffle(perm)
    perm = torch.tensor(perm)
    w = harmonic_weights(a, n, lam=lam)
    torch.testing.assert_close(harmonic_weights(a[perm], n[perm], lam=lam), w[perm], atol=1e-9, rtol=1e-9)


@settings(max_examples=200, deadline=None)
@given(alignments, st.lists(st.integers(1, 50), min_size=1, max_size=40), lams,
       st.floats(min_value=1e-3, max_value=1e3))
def test_scaling_alignment_leaves_weights_unchanged(a_list, n_list, lam, scale):
    a, n = _case(a_list, n_list)
    torch.testing.assert_close(harmonic_weights(a * scale, n, lam=lam), harmonic_weights(a, n, lam=lam),
                               atol=1e-7, rtol=1e-7)


def test_more_aligned_segments_get_more_credit():
    w = harmonic_weights(torch.tensor([0.1, 0.2, 0.4]), torch.tensor([3, 3, 3]))
    assert w[0] < w[1] < w[2]
    # lam = 0.5, r = (4/7, 8/7, 16/7): u_p = 2 r / (r + 1), renormalised -- no clipping binds here
    r = torch.tensor([0.1, 0.2, 0.4]) / (0.7 / 3)
    u = 2 * r / (r + 1)
    torch.testing.assert_close(w, u / u.mean())


def test_clipping_holds_mean_at_one():
    w = harmonic_weights(torch.tensor([1e-6, 1.0, 1.0, 1.0]), torch.tensor([1, 1, 1, 1]), lam=1.0, w_max=1.2)
    assert float(w.max()) <= 1.2 + 1e-7 and abs(float(w.mean()) - 1.0) < 1e-6
    assert float(w[0]) == pytest.approx(0.5)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="w_min <= 1 <= w_max"):
        harmonic_weights(torch.ones(2), torch.ones(2), w_min=1.5)
    with pytest.raises(ValueError, match="lengths"):
        harmonic_weights(torch.ones(2), torch.ones(3))
    with pytest.raises(ValueError, match="at least one token"):
        harmonic_weights(torch.tensor([0.1, 0.2]), torch.tensor([1, 0]))


def test_segment_means():
    means, lengths = segment_means(torch.tensor([1.0, 3.0, 5.0, 7.0]), torch.tensor([0, 0, 1, 2]))
    assert means.tolist() == [2.0, 5.0, 7.0] and lengths.tolist() == [2, 1, 1]


def test_kq_alignment_is_attention_mass_on_the_critical_keys():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(3, 5, 8, generator=g), torch.randn(3, 6, 8, generator=g)
    critical = torch.tensor([True, False, True, False, False, False])
    a = kq_alignment(q, k, critical, scaling=8**-0.5)
    probs = torch.softmax(q @ k.transpose(1, 2) / 8**0.5, dim=-1)
    torch.testing.assert_close(a, probs[..., [0, 2]].sum(-1).mean(0))
    assert torch.allclose(kq_alignment(q, k, torch.ones(6, dtype=torch.bool), 8**-0.5), torch.ones(5))


def test_kk_alignment_is_shifted_mean_cosine():
    g = torch.Generator().manual_seed(1)
    kt, kv = torch.randn(2, 4, 8, generator=g), torch.randn(2, 6, 8, generator=g)
    critical = torch.tensor([False, True, True, False, True, False])
    cos = torch.nn.functional.cosine_similarity(kt[:, :, None], kv[:, None, critical], dim=-1)
    torch.testing.assert_close(kk_alignment(kt, kv, critical), ((1 + cos) / 2).mean(-1).mean(0))
    a = kk_alignment(kt, kv, critical)
    assert bool(((a >= 0) & (a <= 1)).all())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(alignments, st.lists(st.integers(1, 50), min_size=1, max_size=40)), min_size=1, max_size=5),
       lams)
def test_batched_weights_equal_row_by_row(rows, lam):
    from kawhi.method.credit import harmonic_weights_batched

    cases = [_case(a, n) for a, n in rows]
    width = max(len(a) for a, _ in cases)
    a_pad = torch.zeros(len(cases), width, dtype=torch.float64)
    n_pad = torch.zeros(len(cases), width, dtype=torch.long)
    for i, (a, n) in enumerate(cases):
        a_pad[i, : len(a)] = a
        n_pad[i, : len(n)] = n
    batched = harmonic_weights_batched(a_pad, n_pad, lam=lam)
    for i, (a, n) in enumerate(cases):
        torch.testing.assert_close(batched[i, : len(a)], harmonic_weights(a, n, lam=lam), atol=1e-9, rtol=1e-9)
        assert bool((batched[i, len(a):] == 1).all())
