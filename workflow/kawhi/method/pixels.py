"""The images exactly as a Qwen-VL model saw them, rebuilt from the batch's patchified ``pixel_values``.

SGUF must run on the processor-resized image (its patch grid is the visual-token grid), and the gallery
shows that image too. Both rebuild it here instead of carrying a second copy of every image through
the trainer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


_SAME_SIZE_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def images_from_pixel_values(pixel_values: Tensor, image_grid_thw: Tensor, image_processor: Any) -> list[np.ndarray]:
    """Invert the Qwen-VL image processor's patchify + normalise: one [H, W, 3] uint8 image (first frame)
    per row of ``image_grid_thw``.

    Consecutive images with identical pixel values (GRPO's rollouts of one prompt) are rebuilt once: their
    entries are the same array object, so callers can compute per-image work once per ``id``.

    The processor lays pixels out as (t, h/m, w/m, m, m) patches of (C, temporal, p, p) values, with
    m = merge size and p = patch size; this undoes that permutation and the mean/std normalisation.
    """
    p = int(image_processor.patch_size)
    m = int(image_processor.merge_size)
    tp = int(getattr(image_processor, "temporal_patch_size", 2))
    mean = np.asarray(image_processor.image_mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(image_processor.image_std, dtype=np.float32).reshape(3, 1, 1)
    pixels = pixel_values.detach().cpu()  # one transfer for the batch
    bits = pixels.contiguous().view(_SAME_SIZE_INT[pixels.element_size()]).numpy()  # exact-equality view
    images: list[np.ndarray] = []
    start = 0
    previous: tuple[list[int], int] | None = None  # the last image's grid row and first pixel row
    for thw in image_grid_thw.tolist():
        t, h, w = thw
        n = t * h * w
        if previous is not None and previous[0] == thw and np.array_equal(bits[previous[1]:previous[1] + n],
                                                                          bits[start:start + n]):
            images.append(images[-1])  # bit-identical pixels: the same image
            start += n
            continue
        previous = (thw, start)
        block = pixels[start:start + n].float().numpy()
        start += n
        block = block.reshape(t, h // m, w // m, m, m, 3, tp, p, p)
        # -> (t, temporal, C, h/m, m, p, w/m, m, p), the processor's order before its transpose
        block = block.transpose(0, 6, 5, 1, 3, 7, 2, 4, 8)
        frame = block[0, 0].reshape(3, h * p, w * p)
        images.append(np.clip((frame * std + mean) * 255.0 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0))
    if start != pixel_values.shape[0]:
        raise ValueError(f"image_grid_thw accounts for {start} pixel rows, pixel_values has {pixel_values.shape[0]}")
    return images
