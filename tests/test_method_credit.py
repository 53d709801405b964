"""Alignment (Eq. 12-13) and paragraph weights (Eq. 14-15): METHOD.md's invariants, with hypothesis."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kawhi.method.credit import alignment, padded_paragraph_weights, paragraph_weights, segment_means

alphas = st.lists(st.floats(min_value=-1.0, max_value=1.0, allow_nan=False), min_size=1, max_size=30)
taus = st.floats(min_value=0.02, max_value=5.0)
lams = st.floats(min_value=0.0, max_value=1.0)
ranges = st.tuples(st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=0.0, max_value=2.0)).map(sorted)


def eq15(alpha: list[float], tau: float, lam: float, w_min: float, w_max: float) -> list[float]:
    """Eq. 15 written out in plain Python floats."""
    top = max(alpha)
    exps = [math.exp((a - top) / tau) for a in alpha]
    total = sum(exps)
    return [w_min + (w_max - w_min) * ((1 - lam) * e / total + lam / len(alpha)) for e in exps]


@settings(max_examples=200, deadline=None)
@given(alphas, taus, lams, ranges)
def test_weights_equal_eq15_and_stay_in_bounds(alpha, tau, lam, bounds):
    w_min, w_max = bounds
    w = paragraph_weights(torch.tensor(alpha, dtype=torch.float64), tau=tau, lam=lam, w_min=w_min, w_max=w_max)
    assert w.tolist() == pytest.approx(eq15(alpha, tau, lam, w_min, w_max), abs=1e-6)
    assert float(w.min()) >= w_min - 1e-9 and float(w.max()) <= w_max + 1e-9


@settings(max_examples=200, deadline=None)
@given(alphas, taus, lams, ranges)
def test_larger_alignment_never_gets_a_smaller_weight(alpha, tau, lam, bounds):
    w = paragraph_weights(torch.tensor(alpha, dtype=torch.float64), tau=tau, lam=lam, w_min=bounds[0], w_max=bounds[1])
    order = sorted(range(len(alpha)), key=lambda j: alpha[j])
    ranked = [float(w[j]) for j in order]
    assert all(b >= a - 1e-12 for a, b in zip(ranked, ranked[1:]))


@given(st.floats(min_value=-1.0, max_value=1.0), st.integers(1, 40), taus, lams, ranges)
def test_equal_alignments_give_w_min_plus_range_over_m(value, m, tau, lam, bounds):
    w_min, w_max = bounds
    w = paragraph_weights(torch.full((m,), value, dtype=torch.float64), tau=tau, lam=lam, w_min=w_min, w_max=w_max)
    assert w.tolist() == pytest.approx([w_min + (w_max - w_min) / m] * m, abs=1e-9)


def test_one_paragraph_keeps_w_max_and_defaults_are_the_papers():
    assert paragraph_weights(torch.tensor([0.3])).tolist() == pytest.approx([1.0])
    w = paragraph_weights(torch.tensor([0.0, 0.1]))  # tau 0.1, lam 0.1, [0.1, 1.0]
    assert w.tolist() == pytest.approx(eq15([0.0, 0.1], 0.1, 0.1, 0.1, 1.0), abs=1e-7)
    assert float(w.sum()) == pytest.approx(0.2 + 0.9, abs=1e-6)  # sum of w~ is 1: mean weight w_min + 0.9 / M


def test_padded_rows_equal_one_by_one_and_padding_is_one():
    rows = [[0.2, -0.1, 0.5], [0.3], [0.0, 0.0]]
    alpha = torch.zeros(3, 3)
    present = torch.zeros(3, 3, dtype=torch.bool)
    for i, row in enumerate(rows):
        alpha[i, :len(row)] = torch.tensor(row)
        present[i, :len(row)] = True
    out = padded_paragraph_weights(alpha, present, tau=0.1, lam=0.1, w_min=0.1, w_max=1.0)
    for i, row in enumerate(rows):
        torch.testing.assert_close(out[i, :len(row)], paragraph_weights(torch.tensor(row)))
        assert (out[i, len(row):] == 1.0).all()


def test_bad_weight_settings_are_refused():
    with pytest.raises(ValueError, match="tau"):
        paragraph_weights(torch.tensor([0.1, 0.2]), tau=0.0)
    with pytest.raises(ValueError, match="lam"):
        paragraph_weights(torch.tensor([0.1, 0.2]), lam=1.5)
    with pytest.raises(ValueError, match="w_min"):
        paragraph_weights(torch.tensor([0.1, 0.2]), w_min=0.9, w_max=0.5)
    with pytest.raises(ValueError, match="non-empty"):
        paragraph_weights(torch.zeros(0))


def explicit_alignment(q: torch.Tensor, k: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """alpha_t = mean over heads and selected tokens of cos(q_t^h, k_v^h), one cosine at a time."""
    out = torch.zeros(q.shape[0], dtype=torch.float64)
    chosen = selected.nonzero()[:, 0].tolist()
    for t in range(q.shape[0]):
        cosines = [torch.nn.functional.cosine_similarity(q[t, h].double(), k[v, h].double(), dim=0)
                   for h in range(q.shape[1]) for v in chosen]
        out[t] = torch.stack(cosines).mean()
    return out


shapes = st.tuples(st.integers(1, 6), st.integers(1, 5), st.integers(1, 7), st.integers(2, 8))


@settings(max_examples=60, deadline=None)
@given(shapes, st.integers(0, 10_000))
def test_alignment_is_the_mean_of_explicit_cosines(shape, seed):
    t, h, n, d = shape
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(t, h, d, generator=g), torch.randn(n, h, d, generator=g)
    selected = torch.rand(n, generator=g) < 0.6
    selected[torch.randint(n, (1,), generator=g)] = True
    alpha = alignment(q, k, selected)
    assert alpha.shape == (t,)
    torch.testing.assert_close(alpha.double(), explicit_alignment(q, k, selected), atol=1e-5, rtol=0)
    assert float(alpha.abs().max()) <= 1.0
    # cosines ignore length: scaling each query or key by a positive factor changes nothing
    scaled = alignment(q * torch.rand(t, h, 1, generator=g).add(0.1) * 50, k * torch.rand(n, h, 1, generator=g).add(0.1),
                       selected)
    torch.testing.assert_close(scaled, alpha, atol=1e-5, rtol=0)


def test_alignment_edge_cases():
    q = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # two tokens, one head
    k = torch.tensor([[[2.0, 0.0]], [[0.0, -3.0]]])
    assert alignment(q, k, torch.tensor([True, False])).tolist() == pytest.approx([1.0, 0.0])
    assert alignment(q, k, torch.tensor([True, True])).tolist() == pytest.approx([0.5, -0.5])
    assert alignment(q, k, torch.tensor([False, False])).tolist() == [0.0, 0.0]  # no evidence
    with pytest.raises(ValueError, match="one entry per visual token"):
        alignment(q, k, torch.tensor([True]))
    with pytest.raises(ValueError, match="equal H, d"):
        alignment(q, k[:, :, :1], torch.tensor([True, True]))


def test_segment_means():
    values = torch.tensor([1.0, 3.0, 2.0, 4.0, 6.0])
    assert segment_means(values, torch.tensor([0, 0, 1, 2, 2])).tolist() == [2.0, 2.0, 5.0]
