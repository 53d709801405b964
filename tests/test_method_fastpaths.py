"""The per-step fast paths (issue 13) against straightforward references: same bits, not just close.

- SGUF: ``sguf_select`` (lightness from a table, union-find as ``ndimage.label``) against the textbook
  pipeline (skimage ``rgb2lab``, ``gaussian_filter``, ``sobel``,
  ``np.mean`` per patch, a scipy sparse-graph union-find, ``np.median``);
- ``images_from_pixel_values`` rebuilding a repeated image once, against rebuilding every image;
- ``completion_weights`` on GRPO-shaped rows (several rollouts share an image), against the public
  functions row by row with the reference SGUF selection.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import ndimage, sparse
from scipy.sparse.csgraph import connected_components
from skimage.color import rgb2lab

from kawhi.config import KawhiSettings
from kawhi.method.layout import image_grids, visual_layout
from kawhi.method.pixels import images_from_pixel_values
from kawhi.method.selection import ImageSelector
from kawhi.method.sguf import EPS, background_sample, image_digest, lightness, sguf_select
from kawhi.method.weights import completion_weights
from tests.test_method_weights import CONFIG, PATCH, MERGE, PieceTokenizer, block_image, expected_row, synthetic


def reference_sguf(image, patch, delta_s=0.5, delta_l=30.0, sigma=1.0, beta=0.1, skip_ratio=0.7, seed=0):
    """METHOD.md section 2 spelled out with the library calls the method names."""
    light = rgb2lab(image)[..., 0]
    smooth = ndimage.gaussian_filter(light, sigma=sigma, mode="reflect")
    gx = ndimage.sobel(smooth, axis=1, mode="reflect")
    gy = ndimage.sobel(smooth, axis=0, mode="reflect")
    h, w = image.shape[0] // patch, image.shape[1] // patch

    def per_patch(values):
        return values.reshape(h, patch, w, patch).mean(axis=(1, 3))

    sxx, sxy, syy = per_patch(gx * gx), per_patch(gx * gy), per_patch(gy * gy)
    half = (sxx + syy) / 2.0
    radius = np.sqrt(((sxx - syy) / 2.0) ** 2 + sxy**2)
    lmax, lmin, mean_l = half + radius, np.maximum(half - radius, 0.0), per_patch(smooth)
    index = np.arange(h * w).reshape(h, w)
    rows, cols = [], []
    for a, b in [(np.s_[:, :-1], np.s_[:, 1:]), (np.s_[:-1, :], np.s_[1:, :])]:
        distance = np.hypot(lmax[a] - lmax[b], lmin[a] - lmin[b])
        scale = np.maximum(np.maximum(lmax[a], lmax[b]), EPS)
        merge = (distance / scale < delta_s) & (np.abs(mean_l[a] - mean_l[b]) < delta_l)
        rows.append(index[a][merge])
        cols.append(index[b][merge])
    i, j = np.concatenate(rows), np.concatenate(cols)
    graph = sparse.coo_matrix((np.ones(i.size, dtype=np.int8), (i, j)), shape=(h * w, h * w))
    _, labels = connected_components(graph, directed=False)
    _, first = np.unique(labels, return_index=True)
    labels = np.argsort(np.argsort(first))[labels].reshape(h, w)
    trace = lmax + lmin
    n = int(labels.max()) + 1
    energy = np.bincount(labels.ravel(), weights=trace.ravel(), minlength=n) / np.bincount(labels.ravel(), minlength=n)
    key_component = energy > beta * np.median(energy)
    key = key_component[labels]
    rng = np.random.default_rng([int(seed), image_digest(image)])
    selected = key | background_sample(labels, ~key_component, skip_ratio, rng)
    if not selected.any():
        selected.flat[int(np.argmax(trace))] = True
    return labels, key, selected, energy


def shapes_image(size, seed):
    """Filled rectangles and strokes on a flat background (the benchmark's kind of picture)."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 240, dtype=np.uint8)
    for _ in range(5):
        y, x = rng.integers(0, size * 3 // 4, 2)
        r = int(rng.integers(size // 8, size // 3))
        image[y:y + r, x:x + r] = rng.integers(0, 200, 3)
    image[rng.integers(0, size), :] = 20
    return image


def images():
    rng = np.random.default_rng(0)
    out = [(shapes_image(64, s), 16) for s in range(6)] + [(block_image(s), PATCH * MERGE) for s in range(4)]
    for _ in range(6):
        h, w = rng.integers(1, 7, 2)
        p = int(rng.choice([4, 8, 14, 28]))
        out.append((rng.integers(0, 256, (h * p, w * p, 3), dtype=np.uint8), p))  # noise: every colour
        base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        out.append((np.kron(base, np.ones((p, p, 1), dtype=np.uint8)), p))  # flat tokens: many merges
    out += [(np.full((28, 56, 3), 120, dtype=np.uint8), 28), (np.zeros((28, 28, 3), dtype=np.uint8), 28)]
    return out


@pytest.mark.parametrize("params", [{}, {"delta_s": 2.0, "delta_l": 60.0}, {"delta_s": 0.1, "delta_l": 5.0,
                                                                            "skip_ratio": 0.3, "sigma": 0.7}])
def test_sguf_equals_the_reference_bit_for_bit(params):
    for image, patch in images():
        got = sguf_select(image, patch, seed=3, **params)
        labels, key, selected, energy = reference_sguf(image, patch, seed=3, **params)
        np.testing.assert_array_equal(got.labels, labels)
        np.testing.assert_array_equal(got.key, key)
        np.testing.assert_array_equal(got.selected, selected)
        np.testing.assert_array_equal(got.energy, energy)  # exact, not close


def test_lightness_is_exact():
    for image, _ in images():
        np.testing.assert_array_equal(lightness(image), rgb2lab(image)[..., 0])


def _pixel_processor():
    return SimpleNamespace(patch_size=PATCH, merge_size=MERGE, temporal_patch_size=2, image_mean=[0.5, 0.4, 0.3],
                           image_std=[0.25, 0.3, 0.2])


def _patchify(image, proc):
    """The Qwen-VL processor's layout of one image (two identical frames), normalised."""
    p, m, tp = proc.patch_size, proc.merge_size, proc.temporal_patch_size
    mean, std = np.array(proc.image_mean)[:, None, None], np.array(proc.image_std)[:, None, None]
    chw = (image.transpose(2, 0, 1) / 255.0 - mean) / std
    frames = np.stack([chw] * tp)  # (tp, C, H, W)
    h, w = image.shape[0] // p, image.shape[1] // p
    x = frames.reshape(1, tp, 3, h // m, m, p, w // m, m, p).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return torch.tensor(x.reshape(h * w, 3 * tp * p * p), dtype=torch.float32), (1, h, w)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_pixels_rebuild_repeats_once_and_equal_a_per_image_rebuild(dtype):
    proc = _pixel_processor()
    order = [0, 0, 0, 1, 1, 2, 0, 2]  # GRPO groups, plus an image that comes back later
    blocks = [_patchify(block_image(s), proc) for s in range(3)]
    pixels = torch.cat([blocks[i][0] for i in order]).to(dtype)
    grid = torch.tensor([blocks[i][1] for i in order])
    got = images_from_pixel_values(pixels, grid, proc)
    start, sizes = 0, grid.prod(-1).tolist()
    for k, n in enumerate(sizes):  # one image at a time: no sharing possible
        alone = images_from_pixel_values(pixels[start:start + n], grid[k:k + 1], proc)[0]
        np.testing.assert_array_equal(got[k], alone)
        start += n
    assert [got[k] is got[k - 1] for k in range(1, len(order))] == [True, True, False, True, False, False, False]


def reference_rebuild(pixel_values, image_grid_thw, proc):
    """The straightforward inverse: every image on its own, no sharing, no batching."""
    p, m, tp = proc.patch_size, proc.merge_size, proc.temporal_patch_size
    mean = np.asarray(proc.image_mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(proc.image_std, dtype=np.float32).reshape(3, 1, 1)
    out, start = [], 0
    for t, h, w in image_grid_thw.tolist():
        n = t * h * w
        block = pixel_values[start:start + n].float().numpy().reshape(t, h // m, w // m, m, m, 3, tp, p, p)
        frame = block.transpose(0, 6, 5, 1, 3, 7, 2, 4, 8)[0, 0].reshape(3, h * p, w * p)
        out.append(np.clip((frame * std + mean) * 255.0 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0))
        start += n
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_pixels_rebuild_in_runs_equals_the_per_image_reference(dtype):
    """Grids change mid-batch, repeats are shared only between neighbours, a short or long pixel_values is refused."""
    proc = _pixel_processor()
    small = [_patchify(block_image(s), proc) for s in range(3)]
    rng = np.random.default_rng(1)
    large = [_patchify(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8), proc) for _ in range(2)]
    tall = [_patchify(rng.integers(0, 256, (32, 8, 3), dtype=np.uint8), proc)]
    blocks = [small[0], small[0], large[0], large[0], large[1], small[1], small[2], small[2], tall[0], small[0]]
    pixels = torch.cat([b[0] for b in blocks]).to(dtype)
    grid = torch.tensor([b[1] for b in blocks])
    got = images_from_pixel_values(pixels, grid, proc)
    want = reference_rebuild(pixels, grid, proc)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == np.uint8
        np.testing.assert_array_equal(g, w)
    assert [got[k] is got[k - 1] for k in range(1, len(blocks))] == [
        True, False, True, False, False, False, True, False, False]
    with pytest.raises(ValueError):
        images_from_pixel_values(pixels[:-1], grid, proc)
    with pytest.raises(ValueError):
        images_from_pixel_values(torch.cat([pixels, pixels[:4]]), grid, proc)


def test_completion_weights_on_shared_images_equal_the_row_by_row_reference():
    """Rows 0-2 share one image array (a GRPO group), row 3 has its own: the batch path, with its
    per-image memo and the selector's digest hand-over, gives the reference's weights exactly."""
    settings = KawhiSettings()
    captured, input_ids, grid, _, mask, completion = synthetic(batch=4, seed=5)
    shared = block_image(11)
    imgs = [shared, shared, shared, block_image(12)]
    out = completion_weights(captured, input_ids, grid, imgs, mask, completion, PieceTokenizer(), settings, CONFIG,
                             selector=ImageSelector())
    copies = completion_weights(captured, input_ids, grid, [im.copy() for im in imgs], mask, completion,
                                PieceTokenizer(), settings, CONFIG, selector=ImageSelector())
    assert torch.equal(out.weights, copies.weights)
    assert out.stats == copies.stats
    width = completion.shape[1]
    for b in range(3):  # the full rows (the last row is padded)
        selected = reference_sguf(imgs[b], PATCH * MERGE)[2]
        np.testing.assert_array_equal(out.selections[b][0].selected, selected)
        torch.testing.assert_close(out.weights[b], expected_row(captured, b, selected)[:width], rtol=0, atol=1e-6)
        assert out.stats[b]["selected_fraction"] == float(np.mean(selected))


def reference_layout(input_ids, image_grid_thw, image_token_id, merge_size, prompt_lengths=None):
    """``visual_layout`` row by row: each row's positions, images and question spelled out."""
    grids = image_grids(image_grid_thw, merge_size) if image_grid_thw is not None else []
    ends = prompt_lengths.tolist() if prompt_lengths is not None else [input_ids.shape[1]] * input_ids.shape[0]
    out, image = [], 0
    for b, row in enumerate(input_ids):
        positions = (row == image_token_id).nonzero()[:, 0]
        slices, row_grids, filled = [], [], 0
        while filled < positions.numel():
            h, w = grids[image]
            slices.append((filled, filled + h * w))
            row_grids.append(grids[image])
            filled, image = filled + h * w, image + 1
        start = int(positions[-1]) + 1 if positions.numel() else int(ends[b])
        out.append((positions, tuple(slices), tuple(row_grids), torch.arange(start, max(start, int(ends[b])))))
    return out


@pytest.mark.parametrize("with_prompt_lengths", [False, True])
def test_visual_layout_equals_the_row_by_row_reference(with_prompt_lengths):
    """Rows with one image, two images, none, and an image that ends the prompt (no question)."""
    V = 9
    rows = [[0, 1, V, V, V, V, 2, 3, 4, 5],
            [1, V, V, V, V, 2, V, V, 3, 5],
            [0, 0, 1, 2, 3, 4, 5, 6, 7, 8],
            [1, 2, 3, 4, 5, V, V, V, V, 5]]
    input_ids = torch.tensor(rows)
    grid = torch.tensor([[1, 4, 4], [1, 4, 4], [1, 2, 4], [1, 4, 4]])  # merge 2: 2x2, 2x2, 1x2, 2x2 tokens
    prompt = torch.tensor([8, 8, 8, 8]) if with_prompt_lengths else None
    got = visual_layout(input_ids, grid, V, 2, prompt)
    want = reference_layout(input_ids, grid, V, 2, prompt)
    for layout, (positions, slices, grids, question) in zip(got, want, strict=True):
        assert torch.equal(layout.visual_positions, positions)
        assert layout.image_slices == slices and layout.grids == grids
        assert layout.question_positions.dtype == question.dtype
        assert torch.equal(layout.question_positions, question)


def test_selected_fractions_equal_np_mean_of_the_flags():
    """The count / size shortcut gives np.mean's float bit for bit (one correctly rounded division)."""
    from kawhi.method.selection import ImageSelection
    from kawhi.method.weights import _selected_fractions

    rng = np.random.default_rng(0)
    rows = []
    for _ in range(200):
        sels = [ImageSelection(rng.random(tuple(rng.integers(1, 40, 2))) < rng.random(), None)
                for _ in range(int(rng.integers(1, 4)))]
        rows.append(sels)
    rows.append([])
    got = _selected_fractions(rows)
    want = [float(np.mean(np.concatenate([s.selected.ravel() for s in row]))) if row else 0.0 for row in rows]
    assert got == want
