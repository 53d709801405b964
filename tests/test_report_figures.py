"""Figures 3 and 4 and the training curves, from hand-made result files."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from PIL import Image

from kawhi.cli import main
from kawhi.report.curves import curves_frame
from kawhi.report.figure4 import radar_frame
from kawhi.report.manifest import ReportInputError, manifest_json
from kawhi.report.results import reward_curve
from tests.report_fixtures import ALGOS, CHART, MODELS, figure4_entries, score_of, write_heads, write_run


def assert_png_pdf(png, pdf):
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 200 and im.height > 200
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_figure4_radar_plots_the_eval_scores(tmp_path):
    entries = figure4_entries(tmp_path)
    wide = radar_frame(entries)
    assert list(wide.index) == list(CHART)
    assert list(wide.columns) == ["GRPO", "GRPO+KAWHI"]
    for bench in CHART:
        doc = json.loads((tmp_path / "eval" / MODELS[0] / "grpo" / "kawhi" / f"{bench}.json").read_text())
        assert wide.loc[bench, "GRPO+KAWHI"] == doc["metrics"][doc["primary"]]
    manifest = tmp_path / "f4.json"
    manifest.write_text(manifest_json(entries))
    png, pdf = tmp_path / "figure4.png", tmp_path / "figure4.pdf"
    assert main(["figure4", "--manifest", str(manifest), "--out-png", str(png), "--out-pdf", str(pdf)]) == 0
    assert_png_pdf(png, pdf)


def test_figure4_refuses_two_models(tmp_path):
    entries = figure4_entries(tmp_path, MODELS[0]) + figure4_entries(tmp_path, MODELS[1])
    with pytest.raises(ReportInputError, match="one model"):
        radar_frame(entries)


def test_figure3_one_panel_per_model(tmp_path):
    heads = [write_heads(tmp_path, m, critical=(i + 1,)) for i, m in enumerate(MODELS)]
    manifest = tmp_path / "f3.json"
    manifest.write_text(manifest_json(heads))
    png, pdf = tmp_path / "figure3.png", tmp_path / "figure3.pdf"
    assert main(["figure3", "--manifest", str(manifest), "--out-png", str(png), "--out-pdf", str(pdf)]) == 0
    assert_png_pdf(png, pdf)
    with Image.open(png) as im:  # two panels side by side: wider than tall
        assert im.width > im.height


def test_figure3_names_a_bad_ablation_csv(tmp_path):
    from kawhi.report.figure3 import load_heads_result

    entry = write_heads(tmp_path, "m")
    pd.DataFrame({"head": [0], "score": [1.0]}).to_csv(entry.ablation_csv, index=False)
    with pytest.raises(ReportInputError, match="ablation.csv: missing columns"):
        load_heads_result("m", entry.ablation_csv, entry.heads_json)


def test_reward_curve_reads_steps_and_skips_summary_lines(tmp_path):
    run = write_run(tmp_path, "m", "grpo", "kawhi", steps=5, slope=0.1)
    curve = reward_curve(run.metrics_path)
    assert list(curve.step) == [1, 2, 3, 4, 5]
    assert curve.reward.tolist() == pytest.approx([0.3, 0.4, 0.5, 0.6, 0.7])
    run.metrics_path.write_text(json.dumps({"loss": 1.0}) + "\n")
    with pytest.raises(ReportInputError, match="no line carries a reward"):
        reward_curve(run.metrics_path)


def test_curves_panel_per_model_and_algorithm(tmp_path):
    runs = [write_run(tmp_path, m, a, v, slope=0.01 * (1 + (v == "kawhi"))) for m in MODELS for a in ALGOS
            for v in ("baseline", "kawhi")]
    frame = curves_frame(runs)
    assert len(frame) == len(runs) * 12
    last = frame[frame.step == 12].set_index(["model", "algo", "variant"]).reward
    assert last[(MODELS[1], "gspo", "kawhi")] == pytest.approx(0.2 + 0.02 * 12)
    manifest = tmp_path / "runs.json"
    manifest.write_text(manifest_json(runs))
    png, pdf, csv = tmp_path / "c.png", tmp_path / "c.pdf", tmp_path / "c.csv"
    assert main(["curves", "--manifest", str(manifest), "--out-png", str(png), "--out-pdf", str(pdf),
                 "--out-csv", str(csv)]) == 0
    assert_png_pdf(png, pdf)
    assert len(pd.read_csv(csv)) == len(frame)


def test_score_fixture_orders_methods():
    # the fixture's numbers make KAWHI beat its algorithm, which beats the base model
    assert score_of("m-a", "base", "", "chartqa") < score_of("m-a", "grpo", "baseline", "chartqa") \
        < score_of("m-a", "grpo", "kawhi", "chartqa")
