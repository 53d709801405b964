"""Which visual tokens the alignment reads: ``kawhi.regions`` (METHOD.md sections 2 and 6).

- ``sguf`` (the method): SGUF's selection S on the image (``kawhi.method.sguf``);
- ``all``: every visual token (ablation "all vision tokens");
- ``random``: |S| of the image's tokens uniformly at random (ablation; seeded like SGUF's draw);
- ``inverse``: the visual tokens not in S (ablation);
- ``attention``: the ``attention_fraction`` share of each image's tokens that receive the most attention
  from the question (this project's stand-in for the paper's Fig. 4 VisionZip selector; see
  ``attention_selection``).

The first four depend on the image alone, so ``ImageSelector`` computes each image once and keeps the
result by image content (GRPO's rollouts of one prompt share the image; epochs repeat it).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kawhi.config import KawhiSettings
from kawhi.method.sguf import SGUF, image_digest, sguf_select

REGIONS = ("sguf", "all", "random", "inverse", "attention")
RANDOM_STREAM = 1  # a second random stream per image, apart from SGUF's background draw


@dataclass(frozen=True)
class ImageSelection:
    """The selected tokens of one image on its [h, w] token grid, and the SGUF result they derive from
    (None for ``all`` and ``attention``, which do not run SGUF)."""

    selected: np.ndarray
    sguf: SGUF | None


def select_image_tokens(image_rgb: np.ndarray, patch: int, settings: KawhiSettings, seed: int = 0,
                        digest: int | None = None) -> ImageSelection:
    """``kawhi.regions`` on one image (every mode except ``attention``, which needs the model).

    ``digest`` is ``image_digest(image_rgb)`` when the caller already has it."""
    if settings.regions not in REGIONS:
        raise ValueError(f"kawhi.regions must be one of {REGIONS}, got '{settings.regions}'")
    if settings.regions == "attention":
        raise ValueError("regions 'attention' selects by the model's attention: use attention_selection")
    if settings.regions == "all":
        h, w = image_rgb.shape[0] // patch, image_rgb.shape[1] // patch
        return ImageSelection(np.ones((h, w), dtype=bool), None)
    s = settings.sguf
    digest = image_digest(image_rgb) if digest is None else int(digest)
    result = sguf_select(image_rgb, patch, delta_s=s.delta_s, delta_l=s.delta_l, sigma=s.sigma, beta=s.beta,
                         skip_ratio=s.skip_ratio, seed=seed, digest=digest)
    if settings.regions == "sguf":
        return ImageSelection(result.selected, result)
    if settings.regions == "inverse":
        return ImageSelection(~result.selected, result)
    rng = np.random.default_rng([int(seed), digest, RANDOM_STREAM])
    chosen = rng.choice(result.selected.size, size=int(result.selected.sum()), replace=False)
    selected = np.zeros(result.selected.size, dtype=bool)
    selected[chosen] = True
    return ImageSelection(selected.reshape(result.selected.shape), result)


class ImageSelector:
    """``select_image_tokens`` with a bounded cache keyed by (image content, patch, settings, seed)."""

    def __init__(self, max_images: int = 4096):
        self.max_images = int(max_images)
        self._cache: OrderedDict[tuple, ImageSelection] = OrderedDict()

    def __call__(self, image_rgb: np.ndarray, patch: int, settings: KawhiSettings, seed: int = 0) -> ImageSelection:
        digest = image_digest(image_rgb)
        key = (digest, patch, settings.regions, settings.sguf, int(seed))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        result = select_image_tokens(image_rgb, patch, settings, seed, digest=digest)
        self._cache[key] = result
        if len(self._cache) > self.max_images:
            self._cache.popitem(last=False)
        return result

    def clear(self) -> None:
        self._cache.clear()


def received_attention(q_question: Tensor, k_visual: Tensor, scaling: float) -> Tensor:
    """Mean over heads and question tokens of softmax_v(q . k_v * scaling) over the visual keys: [N].

    q_question [Q, H, d], k_visual [N, H, d] (the row's captured final-layer critical heads).
    """
    scores = torch.einsum("qhd,nhd->hqn", q_question.float(), k_visual.float()) * scaling
    return torch.softmax(scores, dim=-1).mean(dim=(0, 1))


def attention_selection(received: Tensor, image_sizes: list[int], fraction: float) -> Tensor:
    """Per image, the round(fraction * n) tokens (at least 1) that receive the most attention: bool [N].

    ``received`` holds the row's visual tokens, images in order, ``image_sizes`` their token counts.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"kawhi.attention_fraction must be in (0, 1], got {fraction}")
    chosen = torch.zeros(received.shape[0], dtype=torch.bool)
    start = 0
    for n in image_sizes:
        count = max(1, math.floor(fraction * n + 0.5))
        top = torch.topk(received[start:start + n].float().cpu(), count).indices
        chosen[start + top] = True
        start += n
    return chosen
