"""The KAWHI rollout gallery: a few rollouts of the last training step, as PNG + JSON for the report.

Each rollout ``i`` becomes ``gallery/rollout_{i}.png`` (the image exactly as the model saw it, rebuilt
from the Qwen-VL patchified ``pixel_values``) and ``gallery/rollout_{i}.json`` with the prompt, the
response, per image the selected-token grid and SGUF's components and key regions (on the merged token
grid), the segment texts and their weights. ``kawhi.method.visualize.render_rollout`` draws them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from kawhi.atomic import atomic_path, write_json
from kawhi.method.pixels import images_from_pixel_values


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
            images = [Image.fromarray(rgb) for rgb in
                      images_from_pixel_values(pixels["pixel_values"], pixels["image_grid_thw"], image_processor)]
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
