"""Figures 3, 4, 5 and 7, the selector comparison and the training curves, from hand-made result files."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from PIL import Image

from kawhi.cli import main
from kawhi.report.curves import curves_frame, seed_bands
from kawhi.report.efficiency import efficiency_frame
from kawhi.report.figure4 import radar_frame
from kawhi.report.manifest import ReportInputError, manifest_json
from kawhi.report.results import reward_curve
from kawhi.report.sweeps import skip_ratio_frame
from tests.report_fixtures import ALGOS, CHART, MODELS, figure4_entries, score_of, write_heads, write_run


def assert_png_pdf(png, pdf):
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 200 and im.height > 200
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_figure4_radar_plots_the_eval_scores_and_writes_the_chart_table(tmp_path):
    entries = figure4_entries(tmp_path, base=True)
    wide = radar_frame(entries)
    assert list(wide.index) == list(CHART)
    assert list(wide.columns) == ["Base model", "GRPO", "GRPO+KAWHI"]
    for bench in CHART:
        doc = json.loads((tmp_path / "eval" / MODELS[0] / "chart" / "grpo" / "kawhi" / "seed-0" / f"{bench}.json")
                         .read_text())
        assert wide.loc[bench, "GRPO+KAWHI"] == doc["metrics"][doc["primary"]]
    manifest = tmp_path / "f4.json"
    manifest.write_text(manifest_json(entries))
    outs = {ext: tmp_path / f"figure4.{ext}" for ext in ("png", "pdf", "csv", "md", "tex")}
    assert main(["figure4", "--manifest", str(manifest)] + [a for ext, path in outs.items()
                                                            for a in (f"--out-{ext}", str(path))]) == 0
    assert_png_pdf(outs["png"], outs["pdf"])
    table = pd.read_csv(outs["csv"]).set_index("method")
    kawhi = table.loc["GRPO+KAWHI"]
    assert kawhi["chartqa vs algo"] == pytest.approx(score_of(MODELS[0], "grpo", "kawhi", "chartqa")
                                                     - score_of(MODELS[0], "grpo", "baseline", "chartqa"), abs=1e-4)
    assert set(table.trainset.dropna()) == {"chart"}


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


def test_curves_band_spans_the_seeds(tmp_path):
    """Two seeds of one run: the line is their mean, the band runs from the lower to the higher seed."""
    runs = [write_run(tmp_path, "m", "grpo", "kawhi", slope=slope, seed=seed)
            for seed, slope in ((0, 0.01), (1, 0.03))]
    bands = seed_bands(curves_frame(runs))
    assert len(bands) == 12 and set(bands.n_seeds) == {2}
    frame = curves_frame(runs)
    for _, band in bands.iterrows():
        at = frame[frame.step == band.step].smoothed
        assert band["mean"] == pytest.approx(at.mean())
        assert band.low == pytest.approx(at.min()) and band.high == pytest.approx(at.max()) and band.low < band.high
    png = tmp_path / "bands.png"
    assert main(["curves", "--manifest", manifest_json(runs), "--out-png", str(png)]) == 0


def test_figure3_marks_the_published_heads(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kawhi.report.figure3 import load_heads_result, plot_figure3

    entry = write_heads(tmp_path, "m", n_heads=8, critical=(3,))
    result = load_heads_result("m", entry.ablation_csv, entry.heads_json, published=(1, 3), source="published")
    fig = plot_figure3([result])
    ax = fig.axes[0]
    marked = [tuple(int(x) for x in c.get_offsets()[:, 0]) for c in ax.collections]
    assert (1, 3) in marked and "published [1, 3]" in ax.get_title() and "published heads" in ax.get_title()
    plt.close(fig)


def test_figure5_ratio_of_step_times_with_its_interval(tmp_path):
    runs = [write_run(tmp_path, "m", "grpo", v, seed=s, step_time=t) for v, t in (("baseline", 1.0), ("kawhi", 1.1))
            for s in (0, 1)]
    frame = efficiency_frame(runs)
    line = frame.iloc[0]
    assert line.base_steps == 2 * 11 and line.kawhi_seeds == 2  # the first step of each run is left out
    assert line.ratio == pytest.approx(1.1, rel=1e-6) and line.ratio_low < 1.1 < line.ratio_high
    assert line.ratio_low > 1.0  # a 10 % slower step is resolved by 22 steps with 1 % jitter
    png, pdf, csv = tmp_path / "f5.png", tmp_path / "f5.pdf", tmp_path / "f5.csv"
    assert main(["figure5", "--manifest", manifest_json(runs), "--out-png", str(png), "--out-pdf", str(pdf),
                 "--out-csv", str(csv)]) == 0
    assert_png_pdf(png, pdf)


def test_figure5_names_a_run_without_step_times(tmp_path):
    run = write_run(tmp_path, "m", "grpo", "baseline")
    run.metrics_path.write_text(json.dumps({"step": 1, "reward": 0.5}) + "\n")
    with pytest.raises(ReportInputError, match="step_time"):
        efficiency_frame([run, write_run(tmp_path, "m", "grpo", "kawhi")])


def test_figure7_and_selector_write_figure_and_table(tmp_path):
    from tests.report_fixtures import make_entry

    variants = ("baseline", "kawhi", "kawhi-kk", "kawhi-token")  # the fixture's scores; stand-ins for sweeps
    entries = [make_entry(tmp_path, "m-a", "grpo", v, b) for v in variants for b in ("shapes_count", "shapes_arith")]
    ratios = {"kawhi": 0.7, "kawhi-kk": 0.1, "kawhi-token": 1.0}
    frame = skip_ratio_frame(entries, ratios)
    kk = frame[(frame.variant == "kawhi-kk") & (frame.column == "shapes_count")].iloc[0]
    assert kk.skip_ratio == 0.1 and kk.low <= kk.score <= kk.high
    assert kk.score == score_of("m-a", "grpo", "kawhi-kk", "shapes_count")
    with pytest.raises(ReportInputError, match="kawhi-token"):
        skip_ratio_frame(entries, {"kawhi": 0.7, "kawhi-kk": 0.1})
    for command, extra in (("figure7", ["--skip-ratios", json.dumps(ratios)]), ("selector", [])):
        outs = {ext: tmp_path / f"{command}.{ext}" for ext in ("png", "pdf", "csv", "md", "tex")}
        args = [command, "--manifest", manifest_json(entries), *extra]
        assert main(args + [a for ext, path in outs.items() for a in (f"--out-{ext}", str(path))]) == 0
        assert_png_pdf(outs["png"], outs["pdf"])
        table = pd.read_csv(outs["csv"]).set_index("variant")
        assert table.loc["kawhi-kk", "shapes_count vs ref"] == pytest.approx(
            score_of("m-a", "grpo", "kawhi-kk", "shapes_count") - score_of("m-a", "grpo", "kawhi", "shapes_count"))


def test_score_fixture_orders_methods():
    # the fixture's numbers make KAWHI beat its algorithm, which beats the base model
    assert score_of("m-a", "base", "", "chartqa") < score_of("m-a", "grpo", "baseline", "chartqa") \
        < score_of("m-a", "grpo", "kawhi", "chartqa")
