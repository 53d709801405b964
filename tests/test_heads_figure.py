"""Figure 3 panel: one bar per head, baseline and threshold lines, critical heads coloured."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from kawhi.ablation_figure import CRITICAL_COLOR, plot_ablation, save_ablation_figure

ABLATION = pd.DataFrame({"head": [0, 1, 2, 3], "total": [300.0, 180.0, 290.0, 260.0],
                         "perception": [250.0, 150.0, 240.0, 210.0], "cognition": [50.0, 30.0, 50.0, 50.0],
                         "drop": [0.0, 120.0, 10.0, 40.0]})


def bar_colors(ax):
    return [to_hex(p.get_facecolor()) for p in ax.patches]


def test_panel_draws_bars_lines_and_colours_critical_heads():
    fig, ax = plt.subplots()
    plot_ablation(ax, ABLATION, baseline=300.0, threshold=50.0, title="tiny")
    assert len(ax.patches) == 4
    colors = bar_colors(ax)
    assert colors[1] == CRITICAL_COLOR and colors.count(CRITICAL_COLOR) == 1
    lines = sorted(line.get_ydata()[0] for line in ax.get_lines())
    assert lines == [250.0, 300.0]  # b - threshold, b
    assert ax.get_title() == "tiny"
    plt.close(fig)


def test_panel_colours_the_top_k_fallback_when_given():
    fig, ax = plt.subplots()
    plot_ablation(ax, ABLATION, baseline=300.0, threshold=500.0, title="fallback", selected=[1, 3])
    colors = bar_colors(ax)
    assert [i for i, c in enumerate(colors) if c == CRITICAL_COLOR] == [1, 3]
    plt.close(fig)


def test_missing_column_is_named():
    fig, ax = plt.subplots()
    with pytest.raises(KeyError, match="total"):
        plot_ablation(ax, ABLATION.drop(columns="total"), 300.0, 50.0, "x")
    plt.close(fig)


def test_figure_is_written_as_png_and_pdf(tmp_path):
    save_ablation_figure(ABLATION, 300.0, 50.0, "tiny", [tmp_path / "f.png", tmp_path / "f.pdf"])
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png"]  # no temp files left
