"""render_rollout writes a PNG with the heat map, the regions and the weighted paragraphs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from kawhi.method.visualize import render_rollout


def test_render_rollout_writes_a_png(tmp_path):
    image = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    saliency = torch.rand(4, 4)
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[3, 2:] = True  # touches the bottom edge
    segments = ["First we look at the red circle on the left of the picture.\n\n", "It is 3.\n\n",
                "The answer is \\boxed{3}."]
    out = render_rollout(image, saliency, mask, segments, [1.4, 0.8, 0.8], tmp_path / "r.png", title="demo")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 600
    # tensor weights and stacked per-image grids are accepted too
    out2 = render_rollout(image, saliency[None], mask[None], segments, torch.tensor([1.0, 1.0, 1.0]),
                          tmp_path / "r2.png")
    assert out2.exists()


def test_render_rollout_refuses_mismatches(tmp_path):
    image = Image.new("RGB", (32, 32))
    with pytest.raises(ValueError, match="segments"):
        render_rollout(image, torch.rand(2, 2), torch.ones(2, 2, dtype=torch.bool), ["a"], [1.0, 1.0], tmp_path / "x.png")
    with pytest.raises(ValueError, match="grids differ"):
        render_rollout(image, torch.rand(2, 2), torch.ones(3, 2, dtype=torch.bool), ["a"], [1.0], tmp_path / "x.png")
