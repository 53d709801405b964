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
    thws = image_grid_thw.tolist()
    sizes = [t * h * w for t, h, w in thws]
    images: list[np.ndarray] = []
    start = 0
    run = 0
    while run < len(thws):  # a run of consecutive images with the same grid: compared and rebuilt at once
        end = run + 1
        while end < len(thws) and thws[end] == thws[run]:
            end += 1
        t, h, w = thws[run]
        n, k = sizes[run], end - run
        if start + n * k > bits.shape[0]:
            raise ValueError(f"image_grid_thw accounts for more than the {bits.shape[0]} pixel rows of pixel_values")
        run_bits = bits[start:start + n * k].reshape(k, -1)
        # image i repeats image i - 1 when their pixel values are bit-identical (GRPO's rollouts of one prompt)
        repeat = [False] + (run_bits[1:] == run_bits[:-1]).all(axis=1).tolist()
        distinct = [i for i in range(k) if not repeat[i]]
        block = pixels[start:start + n * k].view(k, n, -1)[distinct].float().numpy()
        block = block.reshape(len(distinct), t, h // m, w // m, m, m, 3, tp, p, p)
        # -> (image, t, temporal, C, h/m, m, p, w/m, m, p), the processor's order before its transpose
        block = block.transpose(0, 1, 7, 6, 2, 4, 8, 3, 5, 9)
        frames = block[:, 0, 0].reshape(len(distinct), 3, h * p, w * p)
        rebuilt = np.clip((frames * std + mean) * 255.0 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
        rebuilt = np.ascontiguousarray(rebuilt)  # C order: hashing and SGUF read it without another copy
        j = -1
        for i in range(k):
            j += not repeat[i]
            images.append(images[-1] if repeat[i] else rebuilt[j])
        start += n * k
        run = end
    if start != pixel_values.shape[0]:
        raise ValueError(f"image_grid_thw accounts for {start} pixel rows, pixel_values has {pixel_values.shape[0]}")
    return images
