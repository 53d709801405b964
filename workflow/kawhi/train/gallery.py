"""The KAWHI rollout gallery: a few rollouts of the last training step, as PNG + JSON for the report.

Each rollout ``i`` becomes ``gallery/rollout_{i}.png`` (the image exactly as the model saw it, rebuilt
from the Qwen-VL patchified ``pixel_values``) and ``gallery/rollout_{i}.json`` with the prompt, the
response, the saliency and critical-mask grids (one per image, on the merged token grid), the segment
texts and their weights. ``kawhi.method.visualize.render_rollout`` draws them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from kawhi.atomic import atomic_path, write_json


def pixels_to_images(pixel_values: torch.Tensor, image_grid_thw: torch.Tensor, image_processor: Any) -> list[Image.Image]:
    """Invert the Qwen-VL image processor's patchify + normalise: one RGB image (first frame) per grid row.

    The processor lays pixels out as (t, h/m, w/m, m, m) patches of (C, temporal, p, p) values, with
    m = merge size and p = patch size; this undoes that permutation and the mean/std normalisation.
    """
    p = int(image_processor.patch_size)
    m = int(image_processor.merge_size)
    tp = int(getattr(image_processor, "temporal_patch_size", 2))
    mean = np.asarray(image_processor.image_mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(image_processor.image_std, dtype=np.float32).reshape(3, 1, 1)
    images = []
    start = 0
    for t, h, w in image_grid_thw.tolist():
        n = t * h * w
        block = pixel_values[start:start + n].float().cpu().numpy()
        start += n
        block = block.reshape(t, h // m, w // m, m, m, 3, tp, p, p)
        # -> (t, temporal, C, h/m, m, p, w/m, m, p), the processor's order before its transpose
        block = block.transpose(0, 6, 5, 1, 3, 7, 2, 4, 8)
        frame = block[0, 0].reshape(3, h * p, w * p)
        rgb = np.clip((frame * std + mean) * 255.0 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
        images.append(Image.fromarray(rgb))
    if start != pixel_values.shape[0]:
        raise ValueError(f"image_grid_thw accounts for {start} pixel rows, pixel_values has {pixel_values.shape[0]}")
    return images


def _compact_prompt(prompt: str, image_token: str | None) -> str:
    """Collapse each run of image placeholder tokens into one ``<image>`` marker."""
    if not image_token:
        return prompt
    return re.sub(f"(?:{re.escape(image_token)})+", "<image>", prompt)


def write_gallery(out_dir: str | Path, rows: Sequence[dict[str, Any]], image_processor: Any | None,
                  image_token: str | None = None) -> list[Path]:
    """Write each gallery row as ``rollout_{i}.json`` (+ ``rollout_{i}.png`` when it has pixels); return the JSONs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, row in enumerate(rows):
        record = {k: v for k, v in row.items() if k != "pixel_values"}
        record["prompt"] = _compact_prompt(record.get("prompt", ""), image_token)
        pixels = row.get("pixel_values")
        images = []
        if pixels is not None and image_processor is not None:
            images = pixels_to_images(pixels["pixel_values"], pixels["image_grid_thw"], image_processor)
        names = []
        for j, image in enumerate(images):
            name = f"rollout_{i}.png" if len(images) == 1 else f"rollout_{i}_{j}.png"
            with atomic_path(out_dir / name) as tmp:
                image.save(tmp, format="PNG")
            names.append(name)
        record["images"] = names
        path = out_dir / f"rollout_{i}.json"
        write_json(path, record)
        written.append(path)
    return written
