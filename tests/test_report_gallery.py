"""The KAWHI gallery from hand-made rollouts in the trainer's gallery format (kawhi.train.gallery)."""

from __future__ import annotations

import pytest
from PIL import Image

from kawhi.cli import main
from kawhi.report.gallery import spread
from kawhi.report.manifest import ReportInputError, manifest_json
from tests.report_fixtures import write_rollouts, write_run


def test_gallery_renders_the_chosen_rollouts(tmp_path):
    run = write_run(tmp_path, "m", "grpo", "kawhi")
    write_rollouts(run, 5)
    manifest = tmp_path / "runs.json"
    manifest.write_text(manifest_json([run]))
    png, pdf, keep = tmp_path / "gallery.png", tmp_path / "gallery.pdf", tmp_path / "each"
    assert main(["gallery", "--manifest", str(manifest), "--n", "3", "--out-png", str(png),
                 "--out-pdf", str(pdf), "--out-dir", str(keep)]) == 0
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 500
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in keep.glob("*.png")) == [f"m-grpo-kawhi-rollout_{i}.png" for i in (0, 2, 4)]


def test_gallery_without_rollouts_is_an_error(tmp_path):
    from kawhi.report.gallery import write_gallery_figure

    run = write_run(tmp_path, "m", "grpo", "kawhi")
    with pytest.raises(ReportInputError, match="no rollout JSONs"):
        write_gallery_figure([run], 2, tmp_path / "g.png", None)


def test_spread_keeps_first_and_last():
    assert spread(list(range(10)), 3) == [0, 4, 9]  # round(4.5) == 4 (banker's rounding)
    assert spread([1, 2], 5) == [1, 2]
