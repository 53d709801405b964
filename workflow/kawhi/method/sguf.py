"""SGUF, Structure-Guided Union-Find (METHOD.md section 2; the paper's Sec. 3.2, Eq. 5-11, Algorithm 1).

Pixels only: SGUF reads the image as the processor resized it, never the model or the question, so it
runs once per image. One patch is the square of pixels one merged visual token covers, so the patch
grid is the visual-token grid the decoder sees.

1. CIELab lightness L (skimage, D65), Gaussian-smoothed (scipy.ndimage, sigma, mode "reflect");
2. Sobel gradients of the smoothed lightness; per patch the mean structure tensor
   S = mean [[gx^2, gx gy], [gx gy, gy^2]] (Eq. 5-6), its eigenvalues lambda_max >= lambda_min >= 0
   and the mean smoothed lightness;
3. union-find over the 4-connected patch grid (Eq. 8): neighbours merge when
   ||Lambda_i - Lambda_j||_F / max(lambda's, eps) < delta_s and |L_i - L_j| < delta_l; the components of
   the graph of merged edges are scipy.sparse.csgraph.connected_components;
4. component energy E(C) = mean trace of S over its patches (Eq. 9); key regions: E(C) > beta x the
   median energy over components (Eq. 10);
5. selected tokens (Eq. 11): every key-region token plus round((1 - skip_ratio) |C|) tokens drawn
   uniformly without replacement from each background component C (round half up). The draw is
   seeded by ``seed`` and the image's bytes, so the same image always gives the same selection; an
   empty selection takes the patch of largest trace.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.color.colorconv import xyz_from_rgb, xyz_tristimulus_values
from skimage.util import img_as_float64

EPS = 1e-8  # floor of the merge test's denominator (Eq. 8), so two flat patches compare as 0 / EPS = 0


@dataclass(frozen=True)
class SGUF:
    """SGUF's result on one image's [h, w] patch grid.

    ``labels``: component id of each patch (0..n-1, numbered by first patch in row-major order);
    ``key``: patches of key regions; ``selected``: the token set S (key regions + background sample);
    ``energy``: E(C) of each component, indexed by label.
    """

    labels: np.ndarray
    key: np.ndarray
    selected: np.ndarray
    energy: np.ndarray


@dataclass(frozen=True)
class PatchStructure:
    """Per patch: the structure tensor's eigenvalues and the mean smoothed lightness ([h, w] each)."""

    lambda_max: np.ndarray
    lambda_min: np.ndarray
    lightness: np.ndarray

    @property
    def trace(self) -> np.ndarray:
        return self.lambda_max + self.lambda_min


def image_digest(image_rgb: np.ndarray) -> int:
    """A 64-bit digest of the image's shape and bytes (seeds the background draw; keys caches)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(repr(image_rgb.shape).encode())
    h.update(np.ascontiguousarray(image_rgb).tobytes())
    return int.from_bytes(h.digest(), "little")


def _check_image(image_rgb: np.ndarray, patch: int) -> None:
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f"SGUF needs an [H, W, 3] uint8 RGB image, got {image_rgb.dtype} {image_rgb.shape}")
    if patch < 1 or image_rgb.shape[0] % patch or image_rgb.shape[1] % patch:
        raise ValueError(f"image of {image_rgb.shape[0]}x{image_rgb.shape[1]} pixels is not a whole number of "
                         f"{patch}-pixel patches")


def _srgb_linear_table() -> np.ndarray:
    """sRGB value -> linear RGB for the 256 uint8 levels, by skimage's ``rgb2xyz`` formula (float64)."""
    arr = img_as_float64(np.arange(256, dtype=np.uint8)).copy()
    mask = arr > 0.04045
    arr[mask] = np.power((arr[mask] + 0.055) / 1.055, 2.4)
    arr[~mask] /= 12.92
    return arr


_LINEAR = _srgb_linear_table()
_XYZ_FROM_RGB_T = xyz_from_rgb.T.astype(np.float64)
_WHITE_Y = float(xyz_tristimulus_values(illuminant="D65", observer="2", dtype=np.float64)[1])


def lightness(image_rgb: np.ndarray) -> np.ndarray:
    """CIELab L (D65, 2 degrees) of a uint8 RGB image: bit for bit ``skimage.color.rgb2lab(image)[..., 0]``.

    The same float64 operations in the same order, without the work L does not need: the sRGB
    linearisation is elementwise, so it is read from a 256-entry table built by skimage's own formula,
    the XYZ matrix product is skimage's very call on the same [H, W, 3] array, and only the Y channel goes
    through the Lab nonlinearity (L depends on Y alone).
    """
    xyz = _LINEAR[image_rgb] @ _XYZ_FROM_RGB_T
    y = xyz[..., 1] / _WHITE_Y
    mask = y > 0.008856
    y[mask] = np.cbrt(y[mask])
    y[~mask] = 7.787 * y[~mask] + 16.0 / 116.0
    return (116.0 * y) - 16.0


def patch_structure(image_rgb: np.ndarray, patch: int, sigma: float = 1.0) -> PatchStructure:
    """Steps 1-2: the per-patch structure tensor's eigenvalues and mean lightness (Eq. 5-7)."""
    _check_image(image_rgb, patch)
    lightness_ = lightness(image_rgb)
    smooth = ndimage.gaussian_filter(lightness_, sigma=sigma, mode="reflect")
    gx = ndimage.sobel(smooth, axis=1, mode="reflect")
    gy = ndimage.sobel(smooth, axis=0, mode="reflect")
    h, w = image_rgb.shape[0] // patch, image_rgb.shape[1] // patch

    def per_patch(values: np.ndarray) -> np.ndarray:
        return values.reshape(h, patch, w, patch).mean(axis=(1, 3))

    sxx, sxy, syy = per_patch(gx * gx), per_patch(gx * gy), per_patch(gy * gy)
    # eigenvalues of the symmetric 2x2 [[sxx, sxy], [sxy, syy]] in closed form
    half_trace = (sxx + syy) / 2.0
    radius = np.sqrt(((sxx - syy) / 2.0) ** 2 + sxy**2)
    return PatchStructure(lambda_max=half_trace + radius, lambda_min=np.maximum(half_trace - radius, 0.0),
                          lightness=per_patch(smooth))


def union_find(structure: PatchStructure, delta_s: float = 0.5, delta_l: float = 30.0) -> np.ndarray:
    """Step 3: component labels [h, w] of the 4-connected grid whose neighbours pass Eq. 8's two tests."""
    lmax, lmin, light = structure.lambda_max, structure.lambda_min, structure.lightness
    h, w = lmax.shape
    pairs = [(np.s_[:, :-1], np.s_[:, 1:]), (np.s_[:-1, :], np.s_[1:, :])]  # right and down neighbours
    # The components of the merge graph are those of a (2h-1) x (2w-1) pixel grid: patch (i, j) is pixel
    # (2i, 2j), the pixel between two neighbours is set when they merge, the diagonal ones never are;
    # ndimage.label's 4-connected components then are the graph's (one C pass, no sparse matrix).
    grid = np.zeros((2 * h - 1, 2 * w - 1), dtype=bool)
    grid[::2, ::2] = True
    for (a, b), edges in zip(pairs, (grid[::2, 1::2], grid[1::2, ::2])):
        distance = np.hypot(lmax[a] - lmax[b], lmin[a] - lmin[b])  # ||diag(.) - diag(.)||_F
        scale = np.maximum(np.maximum(lmax[a], lmax[b]), EPS)  # lambda_max >= lambda_min on both sides
        edges[...] = (distance / scale < delta_s) & (np.abs(light[a] - light[b]) < delta_l)
    # Components come numbered by their first patch in row-major order (part of this function's contract)
    # as they are: ndimage.label numbers them 1, 2, ... by their first pixel in a raster scan, and a
    # component's first pixel is a patch (an edge pixel follows the patch left of or above it).
    # tests/test_method_sguf.py (hypothesis) and tests/test_method_fastpaths.py check it against union-finds
    # renumbered by hand.
    return ndimage.label(grid)[0][::2, ::2].astype(np.intp) - 1


def key_components(energy: np.ndarray, beta: float = 0.1) -> np.ndarray:
    """Step 4: the components whose energy exceeds beta x the median component energy (Eq. 10)."""
    return energy > beta * np.median(energy)


def background_sample(labels: np.ndarray, background: np.ndarray, skip_ratio: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Step 5's draw: from each background component, round((1 - skip_ratio) |C|) of its patches uniformly
    without replacement (the patches with the smallest of i.i.d. uniform keys within their component)."""
    flat = labels.ravel()
    sizes = np.bincount(flat)
    quota = np.floor((1.0 - skip_ratio) * sizes + 0.5).astype(np.int64)
    quota[~background] = 0
    draw = rng.random(flat.size)
    order = np.lexsort((draw, flat))  # by component, then by the random key
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(flat.size, dtype=np.int64)
    rank[order] = np.arange(flat.size) - start[flat[order]]
    return (rank < quota[flat]).reshape(labels.shape)


def sguf_select(image_rgb: np.ndarray, patch: int, *, delta_s: float = 0.5, delta_l: float = 30.0,
                sigma: float = 1.0, beta: float = 0.1, skip_ratio: float = 0.7, seed: int = 0,
                digest: int | None = None) -> SGUF:
    """SGUF on one [H, W, 3] uint8 image whose sides are multiples of ``patch`` (METHOD.md section 2).

    ``digest`` is ``image_digest(image_rgb)`` when the caller already has it (it seeds the draw)."""
    if not 0.0 <= skip_ratio <= 1.0:
        raise ValueError(f"kawhi.sguf.skip_ratio must be in [0, 1], got {skip_ratio}")
    structure = patch_structure(image_rgb, patch, sigma)
    labels = union_find(structure, delta_s, delta_l)
    trace = structure.trace
    n = int(labels.max()) + 1
    energy = np.bincount(labels.ravel(), weights=trace.ravel(), minlength=n) / np.bincount(labels.ravel(), minlength=n)
    key_component = key_components(energy, beta)
    key = key_component[labels]
    rng = np.random.default_rng([int(seed), image_digest(image_rgb) if digest is None else int(digest)])
    selected = key | background_sample(labels, ~key_component, skip_ratio, rng)
    if not selected.any():
        selected.flat[int(np.argmax(trace))] = True
    return SGUF(labels=labels, key=key, selected=selected, energy=energy)
