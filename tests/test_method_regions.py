"""SGUF region selection on hand-made saliency grids, and the random / inverse ablations."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kawhi.method.regions import (inverse_select, random_select, select_critical, sguf_regions, sguf_select,
                                  visual_saliency)


def _grid(h: int, w: int, background: float = 1.0) -> torch.Tensor:
    return torch.full((h, w), background)


def test_one_bright_blob_is_selected_whole():
    s = _grid(16, 16)
    s[5:8, 9:12] = 20.0  # 9 tokens, 9 * 19 = 171 excess of 180 + 256 total mass
    mask = sguf_select(s)
    blob = torch.zeros(16, 16, dtype=torch.bool)
    blob[5:8, 9:12] = True
    assert torch.equal(mask, blob)


def test_soft_blob_is_selected_whole_with_its_rim():
    s = _grid(12, 12, 0.1)
    s[4:7, 4:7] = 1.0
    s[5, 5] = 3.0
    mask = sguf_select(s, mass=0.9)
    assert bool(mask[4:7, 4:7].all()) and int(mask.sum()) == 9


def test_two_blobs_are_taken_in_mass_order():
    s = _grid(16, 16)
    s[1:4, 1:4] = 10.0  # weaker blob, top left
    s[10:14, 10:14] = 12.0  # stronger blob (more tokens, higher values), bottom right
    regions = sguf_regions(s)
    strong = torch.zeros(16, 16, dtype=torch.bool)
    strong[10:14, 10:14] = True
    weak = torch.zeros(16, 16, dtype=torch.bool)
    weak[1:4, 1:4] = True
    assert torch.equal(torch.from_numpy(regions[0].tokens), strong)
    firsts = [torch.from_numpy(r.tokens) for r in regions]
    assert any(torch.equal(t, weak) for t in firsts)
    assert [r.score for r in regions] == sorted((r.score for r in regions), reverse=True)
    # the strong blob holds 192 / 513 of the mass: at mass 0.3 selection stops after it ...
    assert torch.equal(sguf_select(s, mass=0.3), strong)
    # ... at the default 0.5 the weak blob comes next, and background is never added
    assert torch.equal(sguf_select(s), strong | weak)
    assert torch.equal(sguf_select(s, mass=0.99), strong | weak)


def test_uniform_saliency_falls_back_to_one_token():
    mask = sguf_select(_grid(8, 10, 0.0125))
    assert int(mask.sum()) == 1


def test_blob_at_the_edge_and_odd_grid():
    s = _grid(7, 9)
    s[5:7, 7:9] = 30.0  # bottom-right corner of a grid that pooling cannot halve evenly
    mask = sguf_select(s)
    assert bool(mask[5:7, 7:9].all()) and int(mask.sum()) == 4


def test_token_cap_is_respected():
    s = _grid(10, 10)
    s[0:6, 0:6] = 5.0  # 36 % of the tokens, cap is 25
    mask = sguf_select(s, max_fraction=0.25)
    assert int(mask.sum()) == 25 and bool(mask[0:6, 0:6][mask[0:6, 0:6]].all())
    assert not bool(mask[6:, :].any()) and not bool(mask[:, 6:].any())


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**31 - 1),
       st.floats(min_value=0.05, max_value=1.0), st.floats(min_value=0.05, max_value=1.0), st.integers(1, 4))
def test_mask_is_never_empty_and_within_cap(h, w, seed, mass, max_fraction, levels):
    s = torch.rand(h, w, generator=torch.Generator().manual_seed(seed)) ** 3
    mask = sguf_select(s, levels=levels, mass=mass, max_fraction=max_fraction)
    assert mask.shape == (h, w) and mask.dtype == torch.bool
    assert 1 <= int(mask.sum()) <= max(1, int(max_fraction * h * w))


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 10), st.integers(2, 10), st.integers(0, 2**31 - 1), st.sampled_from(["random", "inverse"]))
def test_random_and_inverse_pick_as_many_tokens_as_sguf(h, w, seed, method):
    s = torch.rand(h, w, generator=torch.Generator().manual_seed(seed))
    n = int(sguf_select(s).sum())
    mask = select_critical(s, method, generator=torch.Generator().manual_seed(seed))
    assert int(mask.sum()) == n


def test_inverse_picks_the_least_salient_and_random_is_seeded():
    s = torch.arange(12.0).view(3, 4)
    assert inverse_select(s, 3).view(-1).nonzero().view(-1).tolist() == [0, 1, 2]
    a = random_select((6, 6), 5, torch.Generator().manual_seed(3))
    b = random_select((6, 6), 5, torch.Generator().manual_seed(3))
    c = random_select((6, 6), 5, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and int(a.sum()) == 5 and not torch.equal(a, c)


def test_visual_saliency_is_a_distribution_over_visual_tokens():
    g = torch.Generator().manual_seed(0)
    s = visual_saliency(torch.randn(4, 3, 8, generator=g), torch.randn(4, 10, 8, generator=g), 8**-0.5)
    assert s.shape == (10,) and abs(float(s.sum()) - 1.0) < 1e-6 and bool((s > 0).all())


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**31 - 1), st.floats(0.2, 0.8))
def test_components_match_union_find(h, w, seed, density):
    from scipy import ndimage

    from kawhi.method.regions import _components

    seeds = torch.rand(h, w, generator=torch.Generator().manual_seed(seed)) < density
    ours = _components(seeds[None].numpy())[0]
    reference, _ = ndimage.label(seeds.numpy(), structure=np.ones((3, 3)))
    # same partition: a one-to-one map between the two labellings
    pairs = set(zip(ours.ravel().tolist(), reference.ravel().tolist()))
    assert len({a for a, _ in pairs}) == len(pairs) == len({b for _, b in pairs})
    assert ((ours == 0) == (reference == 0)).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8), st.integers(1, 5), st.integers(0, 2**31 - 1),
       st.sampled_from(["sguf", "inverse"]))
def test_batched_selection_equals_one_by_one(h, w, g, seed, method):
    from kawhi.method.regions import select_critical_batched

    grids = torch.rand(g, h, w, generator=torch.Generator().manual_seed(seed)) ** 4
    together = select_critical_batched(grids, method)
    for i in range(g):
        assert torch.equal(together[i], select_critical(grids[i], method))
