"""The one model loader every stage uses: a tiny model directory, a fetched checkpoint or a hub id."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_model(path: str | Path, dtype: Any = None, attn_implementation: str = "sdpa",
               device: str | None = None) -> tuple[Any, Any]:
    """``(model, processor)`` for a saved model directory or hub id, in eval mode.

    ``dtype`` defaults to float32 (bfloat16 is the caller's choice on GPU). ``device`` moves the model
    when given. Everything goes through the transformers Auto classes, so a tiny model and a real
    Qwen2.5-VL / Qwen3-VL checkpoint load the same way.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    source = str(path)
    if Path(source).exists() and not (Path(source) / "config.json").exists():
        raise FileNotFoundError(f"{source} is not a model directory (no config.json)")
    model = AutoModelForImageTextToText.from_pretrained(
        source, dtype=dtype or torch.float32, attn_implementation=attn_implementation)
    processor = AutoProcessor.from_pretrained(source)
    if device is not None:
        model.to(device)
    model.eval()
    return model, processor
