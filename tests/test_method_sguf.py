"""SGUF on hand-made images (METHOD.md section 2): strokes, flat images, rotations, the energy rule, the draw."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kawhi.method.sguf import EPS, PatchStructure, patch_structure, sguf_select, union_find

P = 28  # Qwen2.5-VL's merged-token patch
BACKGROUND, INK = 235, 25


def blank(h: int, w: int, value: int = BACKGROUND) -> np.ndarray:
    return np.full((h * P, w * P, 3), value, dtype=np.uint8)


def partition(labels: np.ndarray) -> set[frozenset[int]]:
    """A labelling as the set of its components (sets of flat patch indices): equal partitions compare equal."""
    flat = labels.ravel()
    return {frozenset(np.flatnonzero(flat == c).tolist()) for c in np.unique(flat)}


def strokes_image() -> tuple[np.ndarray, np.ndarray]:
    """Dark strokes on a flat background, each kept 8+ px away from its patches' borders (the Gaussian and
    Sobel reach 5 px), and the patches they lie in."""
    image = blank(5, 6)
    expected = np.zeros((5, 6), dtype=bool)
    image[P + 12:P + 16, 8:3 * P - 8] = INK  # a horizontal stroke through patches (1, 0..2)
    expected[1, 0:3] = True
    image[2 * P + 8:5 * P - 8, 4 * P + 12:4 * P + 16] = INK  # a vertical stroke through patches (2..4, 4)
    expected[2:5, 4] = True
    for i in range(10, 18):  # a short diagonal inside patch (4, 1)
        image[4 * P + i, P + i - 2:P + i + 2] = INK
    expected[4, 1] = True
    return image, expected


def test_strokes_on_a_flat_background_are_the_key_regions():
    image, expected = strokes_image()
    result = sguf_select(image, P)
    np.testing.assert_array_equal(result.key, expected)
    assert result.selected[expected].all()
    # the flat background is one component (it surrounds every stroke), and it holds no key patch
    background = result.labels[~expected]
    assert len(np.unique(background)) == 1 and result.energy[background[0]] == 0.0
    assert result.selected[~expected].sum() == round(0.3 * (~expected).sum())


def test_uniform_image_is_one_component_with_a_background_sample():
    result = sguf_select(blank(4, 4, 120), P)
    assert (result.labels == 0).all() and not result.key.any()
    assert result.selected.sum() == 5  # round(0.3 * 16) = round(4.8)
    only = sguf_select(blank(4, 4, 120), P, skip_ratio=1.0)
    assert only.selected.sum() == 1  # nothing key, nothing sampled: the patch of largest trace


def test_lightness_threshold_keeps_the_two_sides_of_an_edge_apart():
    image = blank(2, 4, 250)
    image[:, 2 * P:] = 40  # a light and a dark half: the edge runs between patch columns 1 and 2
    result = sguf_select(image, P, skip_ratio=1.0)
    # columns 1 and 2 carry the same edge structure but lightness ~97 against ~17: four components
    assert result.labels.tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]
    assert result.key.tolist() == [[False, True, True, False]] * 2
    merged = sguf_select(image, P, delta_l=1000.0, skip_ratio=1.0)
    assert merged.labels.tolist() == [[0, 1, 1, 2], [0, 1, 1, 2]]


def test_union_find_follows_eq8_on_given_structure():
    lmax = np.array([[10.0, 12.0, 100.0, 0.0]])
    lmin = np.array([[1.0, 1.0, 1.0, 0.0]])
    light = np.array([[50.0, 60.0, 55.0, 55.0]])
    # 0-1: ||(2, 0)|| / 12 = 0.17 < 0.5 and |dL| = 10 < 30: merge; 1-2: 88 / 100 > 0.5: no; 2-3: 100.005 / 100 > 0.5: no
    labels = union_find(PatchStructure(lmax, lmin, light))
    assert labels.tolist() == [[0, 0, 1, 2]]
    labels = union_find(PatchStructure(lmax, lmin, light), delta_l=5.0)  # |dL| = 10 now fails
    assert labels.tolist() == [[0, 1, 2, 3]]
    flat = PatchStructure(np.zeros((2, 2)), np.zeros((2, 2)), np.full((2, 2), 10.0))
    assert (union_find(flat) == 0).all()  # 0 / eps = 0 < delta_s: flat neighbours merge


def test_structure_tensor_matches_explicit_per_patch_eigenvalues():
    from scipy import ndimage
    from skimage.color import rgb2lab

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (2 * P, 3 * P, 3), dtype=np.uint8)
    structure = patch_structure(image, P, sigma=1.0)
    smooth = ndimage.gaussian_filter(rgb2lab(image)[..., 0], 1.0, mode="reflect")
    gx, gy = ndimage.sobel(smooth, axis=1, mode="reflect"), ndimage.sobel(smooth, axis=0, mode="reflect")
    for i in range(2):
        for j in range(3):
            sl = np.s_[i * P:(i + 1) * P, j * P:(j + 1) * P]
            g = np.stack([gx[sl].ravel(), gy[sl].ravel()])
            tensor = g @ g.T / g.shape[1]  # Eq. 5-6: the mean outer product of the gradient
            low, high = np.linalg.eigvalsh(tensor)
            assert structure.lambda_max[i, j] == pytest.approx(high, rel=1e-9)
            assert structure.lambda_min[i, j] == pytest.approx(max(low, 0.0), rel=1e-6, abs=1e-6)
            assert structure.lightness[i, j] == pytest.approx(smooth[sl].mean(), rel=1e-12)


def test_same_image_and_seed_give_the_same_selection():
    image, _ = strokes_image()
    first, again = sguf_select(image, P, seed=7), sguf_select(image.copy(), P, seed=7)
    np.testing.assert_array_equal(first.selected, again.selected)
    other = [sguf_select(image, P, seed=s).selected for s in range(8, 12)]
    assert any(not np.array_equal(first.selected, o) for o in other)  # the seed does enter the draw


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="whole number"):
        sguf_select(np.zeros((30, 28, 3), dtype=np.uint8), P)
    with pytest.raises(ValueError, match="uint8"):
        sguf_select(np.zeros((28, 28, 3), dtype=np.float32), P)
    with pytest.raises(ValueError, match="skip_ratio"):
        sguf_select(blank(1, 1), P, skip_ratio=1.5)


# ---- properties (hypothesis) -------------------------------------------------------------------------

PALETTE = np.array([[250, 250, 250], [20, 20, 20], [200, 30, 30], [30, 160, 40], [40, 60, 210], [128, 128, 128]],
                   dtype=np.uint8)
CELL = 7  # blocks of 7x7 pixels: 4x4 blocks per 28-pixel patch


@st.composite
def block_images(draw):
    """Images of random palette blocks (up to 4 x 4 patches) — edges everywhere, at every scale."""
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    cells = draw(st.lists(st.integers(0, len(PALETTE) - 1), min_size=16 * h * w, max_size=16 * h * w))
    grid = np.asarray(cells).reshape(4 * h, 4 * w)
    return np.kron(PALETTE[grid], np.ones((CELL, CELL, 1), dtype=np.uint8))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(block_images(), st.integers(1, 3))
def test_rotation_rotates_labels_and_key(image, turns):
    base = sguf_select(image, P, skip_ratio=1.0)
    turned = sguf_select(np.ascontiguousarray(np.rot90(image, turns)), P, skip_ratio=1.0)
    assert partition(turned.labels) == partition(np.rot90(base.labels, turns))
    np.testing.assert_array_equal(turned.key, np.rot90(base.key, turns))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(block_images(), st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7, 1.0]), st.floats(0.0, 2.0), st.integers(0, 5))
def test_energy_rule_and_background_sample_sizes(image, skip_ratio, beta, seed):
    result = sguf_select(image, P, skip_ratio=skip_ratio, beta=beta, seed=seed)
    structure = patch_structure(image, P)
    energy = np.array([structure.trace[result.labels == c].mean() for c in range(result.labels.max() + 1)])
    np.testing.assert_allclose(result.energy, energy, rtol=1e-12, atol=1e-12)
    threshold = beta * np.median(energy)
    key_components = set(np.unique(result.labels[result.key]).tolist())
    assert all(energy[c] > threshold for c in key_components)
    assert all(energy[c] <= threshold for c in set(range(len(energy))) - key_components)
    sampled = result.selected & ~result.key
    quota = {c: int(np.floor((1 - skip_ratio) * (result.labels == c).sum() + 0.5))
             for c in set(range(len(energy))) - key_components}
    if result.selected.sum() == 1 and not result.key.any() and sum(quota.values()) == 0:
        return  # the empty-selection fallback
    for c, count in quota.items():
        assert int(sampled[result.labels == c].sum()) == count


@st.composite
def patch_structures(draw):
    """Random per-patch structure on grids up to 9 x 9, with values drawn from a few levels so that
    neighbours merge often and seldom, in long chains and in many small pieces."""
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    levels = st.sampled_from([0.0, 1.0, 1.2, 5.0, 40.0])
    values = [np.asarray(draw(st.lists(levels, min_size=h * w, max_size=h * w))).reshape(h, w) for _ in range(3)]
    lmax = np.maximum(values[0], values[1])
    return PatchStructure(lmax, np.minimum(values[0], values[1]), values[2] * 2.0)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(patch_structures())
def test_union_find_numbers_components_by_first_patch_in_row_major_order(structure):
    """``union_find`` relies on ndimage.label's raster-scan numbering: check it against the components of
    the merge graph found by hand (Eq. 8's two tests on every right and down neighbour) and numbered by
    their first patch."""
    lmax, lmin, light = structure.lambda_max, structure.lambda_min, structure.lightness
    h, w = lmax.shape
    parent = list(range(h * w))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(h):
        for j in range(w):
            for k, m in ((i, j + 1), (i + 1, j)):
                if k < h and m < w:
                    distance = np.hypot(lmax[i, j] - lmax[k, m], lmin[i, j] - lmin[k, m])
                    scale = max(lmax[i, j], lmax[k, m], EPS)
                    if distance / scale < 0.5 and abs(light[i, j] - light[k, m]) < 30.0:
                        parent[root(k * w + m)] = root(i * w + j)
    number: dict[int, int] = {}
    expected = [number.setdefault(root(p), len(number)) for p in range(h * w)]
    assert union_find(structure).ravel().tolist() == expected
