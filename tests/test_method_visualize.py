"""render_rollout draws SGUF over the image and the paragraphs shaded by weight (the paper's Fig. 6)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kawhi.method.sguf import sguf_select
from kawhi.method.visualize import render_rollout
from tests.test_method_sguf import P, strokes_image

SEGMENTS = ["First we look at the stroke on the left of the picture.\n\n", "It is 3.\n\n", "The answer is \\boxed{3}."]


def test_render_rollout_draws_sguf_and_weights(tmp_path):
    image, _ = strokes_image()
    result = sguf_select(image, P)
    out = render_rollout(Image.fromarray(image), result.selected, SEGMENTS, [0.62, 0.2, 0.48], tmp_path / "r.png",
                         title="demo", labels=result.labels, key=result.key)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 600
        pixels = np.asarray(im.convert("RGB")).astype(int)
    # the key regions are filled orange over the image, and the sampled background is marked in cyan
    assert ((pixels[..., 0] > 200) & (pixels[..., 1] > 120) & (pixels[..., 1] < 200) & (pixels[..., 2] < 120)).sum() > 100
    assert ((pixels[..., 0] < 80) & (pixels[..., 1] > 200) & (pixels[..., 2] > 200)).sum() > 10
    # without SGUF (regions all / attention) only the selection is drawn
    plain = render_rollout(Image.fromarray(image), np.ones((5, 6), dtype=bool), SEGMENTS, [1.0, 1.0, 1.0],
                           tmp_path / "plain.png")
    assert plain.exists()


def test_render_rollout_refuses_mismatches(tmp_path):
    image = Image.new("RGB", (32, 32))
    with pytest.raises(ValueError, match="segments"):
        render_rollout(image, np.ones((2, 2), bool), ["a"], [1.0, 1.0], tmp_path / "x.png")
    with pytest.raises(ValueError, match="grids differ"):
        render_rollout(image, np.ones((2, 2), bool), ["a"], [1.0], tmp_path / "x.png", labels=np.zeros((3, 2)),
                       key=np.zeros((3, 2), bool))
    with pytest.raises(ValueError, match="together"):
        render_rollout(image, np.ones((2, 2), bool), ["a"], [1.0], tmp_path / "x.png", labels=np.zeros((2, 2)))
