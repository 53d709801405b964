"""ChartMimic's low-level scores: the package's chartmimic_metrics against the official scoring arithmetic.

The official code (ChartMimic/ChartMimic, chart2code/utils/evaluator/) is ported below as the test's
reference, the part after the elements are collected: ``TextEvaluator._calculate_metrics``
(use_position=False), ``ChartTypeEvaluator._calculate_metrics``, ``LayoutEvaluator._calculate_metrics``
(with ``_get_suffix_special_for_graph``), ``ColorEvaluator._calculate_metrics`` (``group_color`` and
the brute-force ``calculate_similarity_parallel`` over permutations), ``color_utils.filter_color``
(applied by the colour suffix when more than 10 colours were logged) and
``color_utils.calculate_similarity_single`` with colormath 3.0's ``convert_color(sRGBColor, LabColor)``
and ``delta_e_cie2000`` (transcribed from colormath's color_conversions.py and color_diff_matrix.py),
and the aggregation of ``scripts/direct_mimic/get_results.ipynb``. Both sides get the same hand-built
element records; every score is compared in points (F1 x 100) within 0.01.
"""

from __future__ import annotations

import math
from itertools import permutations

import numpy
import pytest

from kawhi.eval.scorers.chartmimic_metrics import (color_f1, color_similarity, low_level_scores,
                                                   prepare_program)

# ---- reference: colormath 3.0 ----------------------------------------------------------------------------

_CM_RGB_TO_XYZ = numpy.array(((0.412424, 0.357579, 0.180464),
                              (0.212656, 0.715158, 0.0721856),
                              (0.0193324, 0.119193, 0.950444)))
_CM_ILLUMINANT_D65 = {"X": 0.95047, "Y": 1.00000, "Z": 1.08883}
_CM_CIE_E = 216.0 / 24389.0


def colormath_srgb_to_lab(rgb):
    """colormath color_conversions RGB_to_XYZ (sRGB, target_illuminant = native d65) + XYZ_to_Lab."""
    linear = []
    for v in (c / 255.0 for c in rgb):  # sRGBColor(..., is_upscaled=True)
        linear.append(v / 12.92 if v <= 0.04045 else math.pow((v + 0.055) / 1.055, 2.4))
    x, y, z = numpy.dot(_CM_RGB_TO_XYZ, numpy.array(linear))
    temp = [x / _CM_ILLUMINANT_D65["X"], y / _CM_ILLUMINANT_D65["Y"], z / _CM_ILLUMINANT_D65["Z"]]
    temp = [math.pow(t, 1.0 / 3.0) if t > _CM_CIE_E else (7.787 * t) + (16.0 / 116.0) for t in temp]
    return numpy.array((116.0 * temp[1] - 16.0, 500.0 * (temp[0] - temp[1]), 200.0 * (temp[1] - temp[2])))


def colormath_delta_e_cie2000(lab_color_vector, lab_color_matrix, Kl=1, Kc=1, Kh=1):
    """colormath color_diff_matrix.delta_e_cie2000 (called by color_diff.delta_e_cie2000 with one row)."""
    L, a, b = lab_color_vector
    avg_Lp = (L + lab_color_matrix[:, 0]) / 2.0
    C1 = numpy.sqrt(numpy.sum(numpy.power(lab_color_vector[1:], 2)))
    C2 = numpy.sqrt(numpy.sum(numpy.power(lab_color_matrix[:, 1:], 2), axis=1))
    avg_C1_C2 = (C1 + C2) / 2.0
    G = 0.5 * (1 - numpy.sqrt(numpy.power(avg_C1_C2, 7.0) / (numpy.power(avg_C1_C2, 7.0) + numpy.power(25.0, 7.0))))
    a1p = (1.0 + G) * a
    a2p = (1.0 + G) * lab_color_matrix[:, 1]
    C1p = numpy.sqrt(numpy.power(a1p, 2) + numpy.power(b, 2))
    C2p = numpy.sqrt(numpy.power(a2p, 2) + numpy.power(lab_color_matrix[:, 2], 2))
    avg_C1p_C2p = (C1p + C2p) / 2.0
    h1p = numpy.degrees(numpy.arctan2(b, a1p))
    h1p += (h1p < 0) * 360
    h2p = numpy.degrees(numpy.arctan2(lab_color_matrix[:, 2], a2p))
    h2p += (h2p < 0) * 360
    avg_Hp = (((numpy.fabs(h1p - h2p) > 180) * 360) + h1p + h2p) / 2.0
    T = 1 - 0.17 * numpy.cos(numpy.radians(avg_Hp - 30)) + \
        0.24 * numpy.cos(numpy.radians(2 * avg_Hp)) + \
        0.32 * numpy.cos(numpy.radians(3 * avg_Hp + 6)) - \
        0.2 * numpy.cos(numpy.radians(4 * avg_Hp - 63))
    diff_h2p_h1p = h2p - h1p
    delta_hp = diff_h2p_h1p + (numpy.fabs(diff_h2p_h1p) > 180) * 360
    delta_hp -= (h2p > h1p) * 720
    delta_Lp = lab_color_matrix[:, 0] - L
    delta_Cp = C2p - C1p
    delta_Hp = 2 * numpy.sqrt(C2p * C1p) * numpy.sin(numpy.radians(delta_hp) / 2.0)
    S_L = 1 + ((0.015 * numpy.power(avg_Lp - 50, 2)) / numpy.sqrt(20 + numpy.power(avg_Lp - 50, 2.0)))
    S_C = 1 + 0.045 * avg_C1p_C2p
    S_H = 1 + 0.015 * avg_C1p_C2p * T
    delta_ro = 30 * numpy.exp(-(numpy.power(((avg_Hp - 275) / 25), 2.0)))
    R_C = numpy.sqrt((numpy.power(avg_C1p_C2p, 7.0)) / (numpy.power(avg_C1p_C2p, 7.0) + numpy.power(25.0, 7.0)))
    R_T = -2 * R_C * numpy.sin(2 * numpy.radians(delta_ro))
    return numpy.sqrt(
        numpy.power(delta_Lp / (S_L * Kl), 2) +
        numpy.power(delta_Cp / (S_C * Kc), 2) +
        numpy.power(delta_Hp / (S_H * Kh), 2) +
        R_T * (delta_Cp / (S_C * Kc)) * (delta_Hp / (S_H * Kh)))[0]


# ---- reference: ChartMimic chart2code/utils/evaluator/color_utils.py -------------------------------------

def hex_to_rgb(hex_color):
    hex_color = hex_color.lstrip('#')
    return tuple(int(hex_color[i:i + 2], 16) for i in (0, 2, 4))


def official_calculate_similarity_single(c1, c2):
    if c1.startswith("#") and c2.startswith("#"):
        lab1 = colormath_srgb_to_lab(hex_to_rgb(c1))
        lab2 = colormath_srgb_to_lab(hex_to_rgb(c2))
        return max(0, 1 - (colormath_delta_e_cie2000(lab1, numpy.array([lab2])) / 100))
    elif not c1.startswith("#") and not c2.startswith("#"):
        return 1 if c1 == c2 else 0
    else:
        return 0


def official_filter_color(color_list):
    filtered_color_list = []
    for i in range(len(color_list)):
        if i != 0:
            put_in = True
            for item in filtered_color_list:
                similarity = official_calculate_similarity_single(color_list[i].split("--")[1], item.split("--")[1])
                if similarity > 0.7:
                    put_in = False
                    break
            if put_in:
                filtered_color_list.append(color_list[i])
        else:
            filtered_color_list.append(color_list[i])
    return filtered_color_list


def official_group_color(color_list):
    color_dict = {}
    for color in color_list:
        chart_type = color.split("--")[0]
        color = color.split("--")[1]
        if chart_type not in color_dict:
            color_dict[chart_type] = [color]
        else:
            color_dict[chart_type].append(color)
    return color_dict


# ---- reference: the evaluators' _calculate_metrics --------------------------------------------------------

def _f1(metrics):
    p, r = metrics["precision"], metrics["recall"]
    metrics["f1"] = 0 if p + r == 0 else 2 * p * r / (p + r)
    return metrics


def official_text_metrics(generation_texts, golden_texts):
    """text_evaluator.py TextEvaluator(use_position=False)._calculate_metrics on the logged
    (x, y, x_rel, y_rel, text) tuples."""
    metrics = {"precision": 0, "recall": 0, "f1": 0}
    if len(generation_texts) == 0 or len(golden_texts) == 0:
        return metrics
    len_generation, len_golden = len(generation_texts), len(golden_texts)
    generation_texts = [t[-1] for t in generation_texts]
    golden_texts = [t[-1] for t in golden_texts]
    n_correct = 0
    for t in golden_texts:
        if t in generation_texts:
            n_correct += 1
            generation_texts.remove(t)
    metrics["precision"] = n_correct / len_generation
    metrics["recall"] = n_correct / len_golden
    return _f1(metrics)


def official_chart_type_metrics(generation_chart_types, golden_chart_types):
    """chart_type_evaluator.py ChartTypeEvaluator._calculate_metrics (a fresh evaluator)."""
    metrics = {"precision": 0, "recall": 0, "f1": 0}
    if len(generation_chart_types) == 0:
        return metrics
    n_correct = 0
    total = sum(generation_chart_types.values())
    for chart_type, count in generation_chart_types.items():
        if chart_type in golden_chart_types:
            n_correct += min(count, golden_chart_types[chart_type])
    metrics["precision"] = n_correct / total
    try:
        metrics["recall"] = n_correct / sum(golden_chart_types.values())
    except ZeroDivisionError:
        pass
    return _f1(metrics)


def official_layout_metrics(generation_layouts, golden_layouts):
    """layout_evaluator.py LayoutEvaluator._calculate_metrics."""
    metrics = {"precision": 0, "recall": 0, "f1": 0}
    if len(generation_layouts) == 0 or len(golden_layouts) == 0:
        return metrics
    len_generation, len_golden = len(generation_layouts), len(golden_layouts)
    generation_layouts = list(generation_layouts)
    n_correct = 0
    for t in golden_layouts:
        if t in generation_layouts:
            n_correct += 1
            generation_layouts.remove(t)
    metrics["precision"] = n_correct / len_generation
    metrics["recall"] = n_correct / len_golden
    return _f1(metrics)


def official_graph_layouts(n_axes):
    """layout_evaluator.py _get_suffix_special_for_graph: one fixed dict per axes."""
    return [dict(nrows=1, ncols=1, row_start=0, row_end=1, col_start=0, col_end=1) for _ in range(n_axes)]


def official_logged_colors(drawed_colors):
    """The colour suffix: ``if len(drawed_colors) > 10: drawed_colors = filter_color(drawed_colors)``."""
    return official_filter_color(drawed_colors) if len(drawed_colors) > 10 else drawed_colors


def official_color_metrics(generation_colors, golden_colors, golden_code_file="line_1.py"):
    """color_evaluator.py ColorEvaluator._calculate_metrics (calculate_similarity_parallel: the best sum
    over every permutation, serially here)."""
    metrics = {"precision": 0, "recall": 0, "f1": 0}
    generation_colors, golden_colors = list(generation_colors), list(golden_colors)
    group_generation_colors = official_group_color(generation_colors)
    group_golden_colors = official_group_color(golden_colors)

    def calculate_similarity_parallel(lst1, lst2):
        if len(lst1) == 0 or len(lst2) == 0:
            return 0
        shorter, longer = (lst1, lst2) if len(lst1) <= len(lst2) else (lst2, lst1)
        return max(sum(official_calculate_similarity_single(c1, c2) for c1, c2 in zip(shorter, perm))
                   for perm in permutations(longer, len(shorter)))

    merged_color_group = list(set(list(group_generation_colors.keys()) + list(group_golden_colors.keys())))
    for color in merged_color_group:
        group_generation_colors.setdefault(color, [])
        group_golden_colors.setdefault(color, [])
    max_set_similarity = 0
    for color in merged_color_group:
        max_set_similarity += calculate_similarity_parallel(group_generation_colors[color], group_golden_colors[color])
    metrics["precision"] = max_set_similarity / len(generation_colors) if len(generation_colors) != 0 else 0
    if "box" in golden_code_file:
        metrics["recall"] = max_set_similarity / len(golden_colors) if len(golden_colors) != 0 else 0
    else:
        metrics["recall"] = max_set_similarity / len(golden_colors)
    return _f1(metrics)


def official_scores(golden, generated, example_id="line_1"):
    """The four evaluators as code4evaluation.py runs them on one example, F1 in [0, 1]."""
    def tuples(texts):
        return [(10.0 * i, 5.0, 1.0, 2.0, s) for i, s in enumerate(texts)]

    if example_id.startswith("graph"):
        gen_layout, gold_layout = (official_graph_layouts(generated["n_axes"]), official_graph_layouts(golden["n_axes"]))
    else:
        gen_layout, gold_layout = generated["layout"], golden["layout"]
    return {"text": official_text_metrics(tuples(generated["texts"]), tuples(golden["texts"]))["f1"],
            "layout": official_layout_metrics(gen_layout, gold_layout)["f1"],
            "type": official_chart_type_metrics(generated["chart_types"], golden["chart_types"])["f1"],
            "color": official_color_metrics(official_logged_colors(generated["colors"]),
                                            official_logged_colors(golden["colors"]), example_id + ".py")["f1"]}


def official_get_results(per_example: list[dict], executed: list[bool], denominator: int) -> dict:
    """scripts/direct_mimic/get_results.ipynb: sum of each F1 over the code that ran x 100 / denominator,
    Average the mean of the four."""
    out = {key: sum(s[key] for s, ok in zip(per_example, executed) if ok) * 100 / denominator
           for key in ("text", "layout", "type", "color")}
    out["low_level"] = sum(out.values()) / 4
    out["exec_rate"] = sum(executed) / denominator * 100
    return out


# ---- element records (as the tracer writes them) ----------------------------------------------------------

BAR, LINE, SCATTER, PIE = ("matplotlib.axes._axes.bar", "matplotlib.axes._base._makeline",
                           "matplotlib.axes._axes.scatter", "matplotlib.axes._axes.pie")
T_BAR, T_PLOT = "matplotlib.axes._axes.bar", "matplotlib.axes._axes.plot"


def grid(nrows, ncols, r, c, rs=1, cs=1):
    return {"nrows": nrows, "ncols": ncols, "row_start": r, "row_end": r + rs - 1, "col_start": c, "col_end": c + cs - 1}


GOLD = {"texts": ["Sales", "Year", "Revenue", "2019", "2020", "North"],
        "chart_types": {T_BAR: 2, T_PLOT: 1},
        "colors": [f"{BAR}--#1F77B4", f"{BAR}--#FF7F0E", f"{LINE}--#2CA02C"],
        "layout": [grid(1, 2, 0, 0), grid(1, 2, 0, 1)], "n_axes": 2}

CASES = {  # name -> (example id, generated records)
    "identical": ("bar_1", dict(GOLD)),
    "missing items": ("bar_2", {"texts": ["Sales", "Year"], "chart_types": {T_BAR: 1},
                                "colors": [f"{BAR}--#1F77B4"], "layout": [grid(1, 2, 0, 0)], "n_axes": 1}),
    "extra items": ("bar_3", {"texts": GOLD["texts"] + ["Sales", "South", "note"],
                              "chart_types": {T_BAR: 3, T_PLOT: 2, "matplotlib.axes._axes.scatter": 1},
                              "colors": GOLD["colors"] + [f"{BAR}--#D62728", f"{SCATTER}--#9467BD"],
                              "layout": GOLD["layout"] + [grid(2, 2, 1, 1)], "n_axes": 3}),
    "near colours": ("line_4", dict(GOLD, colors=[f"{BAR}--#2077B0", f"{BAR}--#FF850A", f"{LINE}--#30A030"])),
    "swapped colours across functions": ("line_5", dict(GOLD, colors=[f"{BAR}--#2CA02C", f"{BAR}--#FF7F0E",
                                                                     f"{LINE}--#1F77B4"])),
    "different layout": ("bar_6", dict(GOLD, layout=[grid(2, 1, 0, 0), grid(2, 1, 1, 0)])),
    "spanning layout": ("bar_7", dict(GOLD, layout=[grid(2, 2, 0, 0, cs=2), grid(2, 2, 1, 0), grid(2, 2, 1, 1)])),
    "colormap names": ("heatmap_8", dict(GOLD, colors=[f"{BAR}--#1F77B4", "matplotlib.axes._axes.imshow--viridis",
                                                       f"{LINE}--#2CA02C"])),
    "no plotting call": ("bar_9", dict(GOLD, chart_types={}, colors=[])),
    "graph chart": ("graph_10", dict(GOLD, layout=[grid(3, 3, 0, 0)], n_axes=2)),
}


def _many_colors(step: int, shift: int) -> list[str]:
    """More than 10 colours, so filter_color thins them (in this sorted order on both sides)."""
    out = [f"{PIE}--#{(40 * i + shift) % 256:02X}{(step * i * 7) % 256:02X}{(255 - 20 * i) % 256:02X}" for i in range(12)]
    return sorted(set(out))


CASES["many colours (thinned)"] = ("pie_11", dict(GOLD, colors=_many_colors(5, 0) + [f"{LINE}--#2CA02C"]))
GOLD_MANY = dict(GOLD, colors=_many_colors(6, 10))


@pytest.mark.parametrize("case", list(CASES))
def test_low_level_scores_equal_the_official_evaluators(case):
    example_id, generated = CASES[case]
    golden = GOLD_MANY if "many" in case else GOLD
    ours = low_level_scores(golden, generated, example_id=example_id)
    official = official_scores(golden, generated, example_id)
    for key in ("text", "layout", "type", "color"):
        assert 100 * ours[key] == pytest.approx(100 * official[key], abs=0.01), (case, key, ours, official)


def test_the_cases_cover_distinct_values():
    """The cases are not all 1 or all 0: each metric takes several values, partial ones included."""
    for key in ("text", "layout", "type", "color"):
        values = {round(official_scores(GOLD_MANY if "many" in c else GOLD, g, i)[key], 4) for c, (i, g) in CASES.items()}
        assert len(values) >= 3 and any(0 < v < 1 for v in values), (key, values)
    near = official_scores(GOLD, CASES["near colours"][1])["color"]
    assert 0.9 < near < 1.0  # near colours score high but not 1: CIEDE2000, not exact hex


def test_aggregate_equals_get_results():
    """kawhi's per-sample mean of the four F1s, averaged, with code that failed scoring 0 (ChartMimicScorer
    .aggregate) against get_results.ipynb's sums over the denominator."""
    from kawhi.eval.scorers.chartmimic import ChartMimicScorer

    per_example, scored = [], []
    for case, (example_id, generated) in CASES.items():
        golden = GOLD_MANY if "many" in case else GOLD
        per_example.append(official_scores(golden, generated, example_id))
        s = low_level_scores(golden, generated, example_id=example_id)
        scored.append({"executed": True, "score": sum(s.values()) / 4, **s})
    executed = [True] * len(scored) + [False, False]
    per_example += [{k: 0.0 for k in ("text", "layout", "type", "color")}] * 2
    scored += [{"executed": False, "score": 0.0, "text": 0.0, "layout": 0.0, "type": 0.0, "color": 0.0}] * 2
    ours = ChartMimicScorer("chartmimic").aggregate([{}] * len(scored), scored)
    official = official_get_results(per_example, executed, denominator=len(scored))
    for key in ("low_level", "exec_rate", "text", "layout", "type", "color"):
        assert ours[key] == pytest.approx(official[key], abs=0.01), key


@pytest.mark.parametrize("c1,c2", [("#1F77B4", "#2077B0"), ("#FF7F0E", "#D62728"), ("#000000", "#FFFFFF"),
                                   ("#808080", "#1F77B4"), ("#2CA02C", "#98DF8A"), ("#9467BD", "#8C564B"),
                                   ("#E377C2", "#F7B6D2"), ("#7F7F7F", "#7F7F80"), ("#BCBD22", "#17BECF")])
def test_colour_similarity_is_colormaths(c1, c2):
    assert color_similarity(c1, c2) == pytest.approx(official_calculate_similarity_single(c1, c2), abs=1e-9)


def test_colour_similarity_against_the_colormath_package():
    """The reference transcription itself, checked against colormath 3.0 where it is installed (it is not a
    dependency: ``pip install colormath==3.0.0``; numpy >= 1.23 needs the official ``asscalar`` patch)."""
    colormath = pytest.importorskip("colormath")
    numpy.asscalar = lambda a: a.item()  # color_utils.py patch_asscalar
    from colormath.color_conversions import convert_color
    from colormath.color_diff import delta_e_cie2000
    from colormath.color_objects import LabColor, sRGBColor

    assert colormath is not None
    rng = numpy.random.default_rng(0)
    for _ in range(300):
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        lab = [convert_color(sRGBColor(*map(int, x), is_upscaled=True), LabColor) for x in (a, b)]
        expected = max(0, 1 - delta_e_cie2000(*lab) / 100)
        hexes = ["#" + "".join(f"{int(v):02X}" for v in x) for x in (a, b)]
        assert color_similarity(*hexes) == pytest.approx(expected, abs=1e-9)


def test_colour_f1_when_the_reference_logs_no_colour():
    """Official: recall divides by len(golden) and raises ZeroDivisionError unless 'box' is in the reference's
    path (then 0); here 0 for every chart (documented)."""
    assert official_color_metrics([f"{BAR}--#1F77B4"], [], "box_1.py")["f1"] == 0
    with pytest.raises(ZeroDivisionError):
        official_color_metrics([f"{BAR}--#1F77B4"], [], "bar_1.py")
    assert color_f1([f"{BAR}--#1F77B4"], []) == 0.0


def test_tracer_writes_the_axes_count():
    assert '"n_axes": len(plt.gcf().axes)' in prepare_program("import matplotlib.pyplot as plt\nplt.plot([1])\n")
