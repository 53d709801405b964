"""ChartMimic's low-level evaluators (ChartMimic/ChartMimic, ``chart2code/utils/evaluator/``), ported.

Each official evaluator runs a program with a logging prefix and compares what the reference and the
generated program logged. One sandboxed run here logs all four records (:data:`TRACER_PREFIX` /
:data:`TRACER_SUFFIX`, written to :data:`ELEMENTS_FILE` as JSON), and these functions compare them:

* ``texts`` (``text_evaluator.py``, ``TextEvaluator(use_position=False, use_axs=False)`` as
  ``tasks/code4evaluation.py`` builds it): every string the PDF renderer draws
  (``RendererPdf.draw_text``) when the figure is saved, after every axes' x and y ticks are removed;
  F1 of the multiset match (:func:`text_f1`).
* ``chart_types`` (``chart_type_evaluator.py`` + ``chart_type_evaluator_prefix.py``): how often each
  plotting function was called (``Axes.plot``, ``bar``, ``scatter``, ``hist``, ...; nested calls count
  once); F1 of the per-type minimum counts (:func:`chart_type_f1`).
* ``colors`` (``color_evaluator.py`` + ``color_evaluator_prefix.py``): ``"<plotting function>--#RRGGBB"``
  (or a colormap name) per drawn element, refreshed from the final objects (``update_drawed_colors``),
  deduplicated, and thinned by ``color_utils.filter_color`` when there are more than 10; per plotting
  function the best one-to-one pairing by CIEDE2000 similarity, ``max(0, 1 - dE/100)`` (colormath 3.0's
  sRGB -> Lab conversion, relative to D65, and its ``delta_e_cie2000``, reproduced in :func:`srgb_to_lab`
  and :func:`delta_e_cie2000`), summed over functions and divided by each side's count for precision
  and recall (:func:`color_f1`).
* ``layout`` (``layout_evaluator.py``): each axes' gridspec geometry (``nrows``, ``ncols``, row and
  column span) of the final figure; F1 of the multiset match (:func:`layout_f1`).

Programs are prepared as ``utils/post_process/code_interpreter.py`` does (everything from the first
``plt.savefig(`` and from the first ``plt.show(`` on is cut, ``plt.savefig`` to a PDF appended).
Differences, all documented in docs/scoring.md: only matplotlib's own plotting functions are traced
(the official prefixes also hook networkx, squarify, matplotlib_venn and mplot3d's ``Axes3D``);
functions are named by their module and name instead of ``inspect.getfile(func)/name`` (the same
grouping); the best colour pairing is solved as an assignment problem (scipy's
``linear_sum_assignment``) instead of by trying every permutation, which gives the same maximum; the
colours are thinned in sorted order, where the official order comes from a Python ``set`` and varies
from run to run. Where matplotlib >= 3.9 changed what the official prefixes read, the tracer records what
matplotlib 3.8 (the official environment) gives: a gridspec colorbar's layout records and
``ListedColormap``'s default name. tests/test_chartmimic_collection_official.py compares the collected
records with the official prefixes' own on 12 programs.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

import numpy as np

ELEMENTS_FILE = "kawhi_elements.json"
FIGURE_FILE = "kawhi_figure.pdf"
LOW_LEVEL = ("text", "layout", "type", "color")
MAX_COLORS_BEFORE_FILTER = 10   # color_evaluator.py _get_suffix: filter_color when len > 10
FILTER_SIMILARITY = 0.7         # color_utils.filter_color

# Logs the official records while the program under test runs (inside the sandbox).
TRACER_PREFIX = r'''
import functools as _kx_functools, json as _kx_json, warnings as _kx_warnings
_kx_warnings.filterwarnings("ignore")
import matplotlib as _kx_mpl
_kx_mpl.use("Agg")
import matplotlib.cbook as _kx_cbook, matplotlib.colorbar as _kx_cbar, matplotlib.colors as _kx_colors
import matplotlib.patches as _kx_patches
import matplotlib.pyplot as plt
from matplotlib.axes import Axes as _KxAxes
from matplotlib.axes._base import _process_plot_var_args as _KxPlotArgs
from matplotlib.backends.backend_pdf import RendererPdf as _KxRendererPdf
from matplotlib.image import NonUniformImage as _KxNonUniformImage
from matplotlib.patches import Circle as _KxCircle, Ellipse as _KxEllipse
from matplotlib.projections.polar import PolarAxes as _KxPolarAxes

_kx_texts, _kx_types, _kx_objects = [], {}, {}
_kx_busy = {"type": False, "color": False}

def _kx_hex(color):
    try:
        if isinstance(color, str):
            if color.startswith("#") and len(color) in (7, 9):
                return color.upper()
            return _kx_colors.to_hex(_kx_colors.to_rgba(color)).upper()
        return _kx_colors.to_hex(list(color)).upper()
    except (ValueError, TypeError):
        return None

def _kx_cmap(cmap):
    """A colormap's name as matplotlib 3.8 (the official environment) gives it: ListedColormap's default
    name was "from_list" until matplotlib 3.10 renamed it "unnamed" (contour(colors=...) makes one)."""
    name = cmap.name
    return "from_list" if name == "unnamed" and isinstance(cmap, _kx_colors.ListedColormap) else name

def _kx_draw_text(func):
    def wrapper(*args, **kwargs):
        _kx_texts.append(str(args[4]))
        return func(*args, **kwargs)
    return wrapper

_KxRendererPdf.draw_text = _kx_draw_text(_KxRendererPdf.draw_text)

def _kx_name_of(func):
    """inspect.getfile(func) + name in the official prefixes: the defining module and the function."""
    return f"{func.__module__}.{func.__name__}"

def _kx_count(func):
    name = _kx_name_of(func)
    @_kx_functools.wraps(func)
    def wrapper(*args, **kwargs):
        if _kx_busy["type"]:
            return func(*args, **kwargs)
        _kx_busy["type"] = True
        try:
            # chart_type_evaluator_prefix.py log_function: plot on a PolarAxes is its own type
            # ("<file>_polar-plot"), so a polar line chart does not match a cartesian one
            key = f"{name}_polar" if func.__name__ == "plot" and args and type(args[0]) is _KxPolarAxes else name
            _kx_types[key] = _kx_types.get(key, 0) + 1
            return func(*args, **kwargs)
        finally:
            _kx_busy["type"] = False
    return wrapper

for _kx_name in ("bar", "barh", "plot", "axhline", "axvline", "axvspan", "axhspan", "hlines", "vlines", "errorbar",
                 "boxplot", "violinplot", "violin", "hist", "fill_between", "fill_betweenx", "scatter", "quiver", "pie",
                 "fill", "imshow", "pcolor", "contour", "contourf", "broken_barh", "tripcolor"):
    setattr(_KxAxes, _kx_name, _kx_count(getattr(_KxAxes, _kx_name)))
for _kx_cls in (_KxNonUniformImage, _KxEllipse, _KxCircle):
    _kx_cls.__init__ = _kx_count(_kx_cls.__init__)

def _kx_record(key, obj):
    _kx_objects[key] = obj

def _kx_colored(func):
    name = _kx_name_of(func)
    @_kx_functools.wraps(func)
    def wrapper(*args, **kwargs):
        if _kx_busy["color"]:
            return func(*args, **kwargs)
        _kx_busy["color"] = True
        try:
            result = func(*args, **kwargs)
            _kx_log_colors(func.__name__, name, args, kwargs, result)
            return result
        finally:
            _kx_busy["color"] = False
    return wrapper

def _kx_log_colors(short, name, args, kwargs, result):
    polar = len(args) > 0 and isinstance(args[0], _KxPolarAxes)
    if short in ("_makeline", "_make_line"):
        _kx_record(f"{name}--{_kx_hex(result[1]['color'])}", result[0])
    elif short in ("axhline", "axvline"):
        _kx_record(f"{name}--{_kx_hex(result.get_color())}", result)
    elif short == "_fill_between_x_or_y":
        _kx_record(f"{name}--{_kx_hex(result.get_facecolors()[0])}", result)
    elif short == "bar":
        for item in result:
            _kx_record(f"{name}--{_kx_hex(item._original_facecolor)}", item)
    elif short == "scatter":
        tag = f"{name}_polar" if polar else name
        cmap = kwargs.get("cmap")
        if cmap is not None:
            cmap = cmap if isinstance(cmap, str) else _kx_cmap(cmap)
            _kx_record(f"{tag}--{cmap}", result)
        elif len(result.get_facecolor()) != 0:
            _kx_record(f"{tag}--{_kx_hex(result.get_facecolor()[0])}", result)
    elif short == "pie":
        for item in result[0]:
            _kx_record(f"{name}--{_kx_hex(item.get_facecolor())}", item)
    elif short in ("axvspan", "axhspan"):
        _kx_record(f"{name}--{_kx_hex(result.get_facecolor())}", result)
    elif short in ("hlines", "vlines", "quiver", "broken_barh"):
        # color_evaluator_prefix.py keys these by the last colour of the collection (the loop variable
        # left over from logging them all), so a later call whose last colour is the same replaces it
        colors = result.get_edgecolors() if short in ("hlines", "vlines") else result.get_facecolors()
        _kx_record(f"{name}--{_kx_hex(colors[-1])}", result)
    elif short == "boxplot":
        for item in result["boxes"]:
            if isinstance(item, _kx_patches.PathPatch):
                _kx_record(f"{name}--{_kx_hex(item.get_facecolor())}", item)
    elif short == "violinplot":
        for item in result["bodies"]:
            _kx_record(f"{name}--{_kx_hex(item.get_facecolor()[0])}", item)
    elif short == "hist":
        patches = result[2]
        containers = patches if isinstance(patches, _kx_cbook.silent_list) else [patches]
        for container in containers:
            for item in container:
                _kx_record(f"{name}--{_kx_hex(item.get_facecolor())}", item)
    elif short == "plot" and polar:
        for line in result:
            _kx_record(f"{name}_polar--{_kx_hex(line.get_color())}", line)
    elif short in ("imshow", "pcolor", "contour", "contourf", "tripcolor"):
        _kx_record(f"{name}--{_kx_cmap(result.get_cmap())}", result)
    elif short == "fill":
        for patch in result:
            _kx_record(f"{name}--{_kx_hex(patch.get_facecolor())}", patch)
    elif short == "__init__" and isinstance(args[0], _KxNonUniformImage):
        _kx_record(f"{name}--{_kx_cmap(args[0].get_cmap())}", args[0])
    elif short == "__init__" and isinstance(args[0], (_KxEllipse, _KxCircle)):
        _kx_record(f"{name}--{_kx_hex(args[0].get_facecolor())}", args[0])

# the line factory the official prefix hooks: _makeline, renamed _make_line in matplotlib 3.9
_kx_makeline = "_make_line" if hasattr(_KxPlotArgs, "_make_line") else "_makeline"
setattr(_KxPlotArgs, _kx_makeline, _kx_colored(getattr(_KxPlotArgs, _kx_makeline)))
for _kx_name in ("bar", "scatter", "axhline", "axvline", "_fill_between_x_or_y", "pie", "axvspan", "axhspan", "hlines",
                 "vlines", "boxplot", "violinplot", "hist", "quiver", "imshow", "pcolor", "contour", "contourf", "fill",
                 "broken_barh", "tripcolor"):
    setattr(_KxAxes, _kx_name, _kx_colored(getattr(_KxAxes, _kx_name)))
_KxPolarAxes.plot = _kx_colored(_KxPolarAxes.plot)
for _kx_cls in (_KxNonUniformImage, _KxEllipse, _KxCircle):
    _kx_cls.__init__ = _kx_colored(_kx_cls.__init__)

def _kx_final_colors():
    """update_drawed_colors: each logged element's colour read again from the finished object."""
    colors = []
    for key, obj in _kx_objects.items():
        name, color = key.split("--", 1)
        if not color.startswith("#") or name.endswith(("imshow", "pcolor", "contour", "contourf", "tripcolor")):
            colors.append(key)
        elif name.endswith(("_makeline", "_make_line", "axhline", "axvline", "plot_polar")):
            colors.append(f"{name}--{_kx_hex(obj.get_color())}")
        elif name.endswith(("hlines", "vlines")):
            colors += [f"{name}--{_kx_hex(c)}" for c in obj.get_edgecolors()]
        elif name.endswith(("quiver", "broken_barh")):
            colors += [f"{name}--{_kx_hex(c)}" for c in obj.get_facecolors()]
        elif name.endswith(("_fill_between_x_or_y", "violinplot")) or "scatter" in name:
            if len(obj.get_facecolors()) != 0:
                colors.append(f"{name}--{_kx_hex(obj.get_facecolors()[0])}")
        elif name.endswith("bar"):
            colors.append(f"{name}--{_kx_hex(obj._original_facecolor)}")
        else:
            colors.append(f"{name}--{_kx_hex(obj.get_facecolor())}")
    return sorted({c for c in colors if not c.endswith("--None")})

# matplotlib 3.8 (the official environment) and later versions place a gridspec colorbar differently:
# 3.8's colorbar.make_axes_gridspec splits the parent's cell into a 1x2 (2x1) subgridspec and the
# colorbar's half again into 3x1 (1x3); later versions use one 3x2 (2x3) subgridspec. The records
# layout_evaluator.py reads (geometry, row and column span) of both axes are the 3.8 ones here.
_kx_spec_38 = {}   # axes -> (its subplotspec when the colorbar was made, the 3.8 record)
_KX_COLORBAR_38 = {"right": ((1, 2, 0, 0), (3, 1, 1, 0)), "left": ((1, 2, 0, 1), (3, 1, 1, 0)),
                   "bottom": ((2, 1, 0, 0), (1, 3, 0, 1)), "top": ((2, 1, 1, 0), (1, 3, 0, 1))}

def _kx_record_38(ax, geometry):
    nrows, ncols, row, col = geometry
    _kx_spec_38[ax] = (ax.get_subplotspec(), {"nrows": nrows, "ncols": ncols, "row_start": row,
                                             "row_end": row, "col_start": col, "col_end": col})

def _kx_colorbar_38(func):
    @_kx_functools.wraps(func)
    def wrapper(parent, *args, **kwargs):
        cax, rest = func(parent, *args, **kwargs)
        try:
            spec, cax_spec = parent.get_subplotspec(), cax.get_subplotspec()
            if spec is not None and cax_spec is not None and spec.get_gridspec() is cax_spec.get_gridspec():
                location = _kx_cbar._normalize_location_orientation(
                    kwargs.get("location"), kwargs.get("orientation"))["location"]
                parent_38, cax_38 = _KX_COLORBAR_38[location]
                _kx_record_38(parent, parent_38)
                _kx_record_38(cax, cax_38)
        except Exception:
            pass
        return cax, rest
    return wrapper

_kx_cbar.make_axes_gridspec = _kx_colorbar_38(_kx_cbar.make_axes_gridspec)

def _kx_layout(fig):
    """layout_evaluator.py _get_suffix get_gridspec_layout_info: per axes with a subplotspec its
    gridspec's geometry and its (inclusive) row and column span."""
    layout = []
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is None:
            continue
        if ax in _kx_spec_38 and _kx_spec_38[ax][0] is spec:
            layout.append(dict(_kx_spec_38[ax][1]))
            continue
        nrows, ncols = spec.get_gridspec().get_geometry()
        layout.append({"nrows": nrows, "ncols": ncols, "row_start": spec.rowspan.start,
                       "row_end": spec.rowspan.stop - 1, "col_start": spec.colspan.start,
                       "col_end": spec.colspan.stop - 1})
    return layout
'''

# The records go through the sandbox's result channel when there is one (kawhi.eval.sandbox: the code
# under test cannot leave a forged file for the scorer), else to ELEMENTS_FILE.
TRACER_SUFFIX = r'''
import os as _kx_os
_kx_fd = _kx_os.environ.get("KAWHI_SANDBOX_CHANNEL_FD")
with (open(int(_kx_fd), "w", closefd=False) if _kx_fd else open("ELEMENTS_FILE", "w")) as _kx_fh:
    _kx_json.dump({"texts": _kx_texts, "chart_types": _kx_types, "colors": _kx_final_colors(),
                   "layout": _kx_layout(plt.gcf()), "n_axes": len(plt.gcf().axes)}, _kx_fh)
'''.replace("ELEMENTS_FILE", ELEMENTS_FILE)

# text_evaluator.py _get_ax_ticks_deletion_code (use_axs=False)
_TICKS_DELETION = """
for _kx_ax in plt.gcf().get_axes():
    _kx_ax.set_xticks([])
    _kx_ax.set_yticks([])
"""


def prepare_program(code: str) -> str:
    """The program one sandboxed run executes: the tracer, then ``code`` cut at its first
    ``plt.savefig(``/``plt.show(`` (code_interpreter.py's regexes), ticks removed, the figure saved to a
    PDF (where the text records come from), and the records written."""
    code = re.sub(r"plt\.savefig\(.*\n*", "", code, flags=re.S)
    code = re.sub(r"plt.show\(.*\n*", "", code, flags=re.S)
    body = code.strip() + "\n" + _TICKS_DELETION + f'plt.savefig("{FIGURE_FILE}")\n'
    return TRACER_PREFIX + "\n" + body + TRACER_SUFFIX


# ---- comparisons -----------------------------------------------------------------------------------------

def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _multiset_f1(generated: list, golden: list) -> float:
    """text_evaluator / layout_evaluator ``_calculate_metrics``: 0 when either side is empty."""
    if not generated or not golden:
        return 0.0
    remaining = list(generated)
    correct = 0
    for item in golden:
        if item in remaining:
            correct += 1
            remaining.remove(item)
    return _f1(correct / len(generated), correct / len(golden))


def text_f1(generated: list[str], golden: list[str]) -> float:
    return _multiset_f1(generated, golden)


def layout_f1(generated: list[dict], golden: list[dict]) -> float:
    return _multiset_f1(generated, golden)


def chart_type_f1(generated: dict[str, int], golden: dict[str, int]) -> float:
    """chart_type_evaluator ``_calculate_metrics``: 0 when the generated program called no plotting
    function, and when the reference called none."""
    if not generated or not golden:
        return 0.0
    correct = sum(min(count, golden[name]) for name, count in generated.items() if name in golden)
    return _f1(correct / sum(generated.values()), correct / sum(golden.values()))


# colormath 3.0 (what color_utils.py calls): sRGBColor's rgb_to_xyz matrix, its D65 white point, CIE_E
_SRGB_TO_XYZ = np.array([[0.412424, 0.357579, 0.180464],
                         [0.212656, 0.715158, 0.0721856],
                         [0.0193324, 0.119193, 0.950444]])
_D65 = np.array([0.95047, 1.0, 1.08883])
_CIE_E = 216.0 / 24389.0


def srgb_to_lab(hex_color: str) -> np.ndarray:
    """colormath's ``convert_color(sRGBColor(r, g, b, is_upscaled=True), LabColor)`` as color_utils.py
    calls it: sRGB -> linear (0.04045 / 12.92 / 2.4) -> XYZ with colormath's sRGB matrix -> Lab relative
    to sRGB's native illuminant D65 (no ``target_illuminant`` is passed, so there is no adaptation to
    LabColor's default D50)."""
    rgb = np.array([int(hex_color[i:i + 2], 16) / 255.0 for i in (1, 3, 5)])
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    t = (_SRGB_TO_XYZ @ linear) / _D65
    f = np.where(t > _CIE_E, np.cbrt(t), 7.787 * t + 16.0 / 116.0)
    return np.array([116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])])


def delta_e_cie2000(lab1: np.ndarray, lab2: np.ndarray) -> float:
    """colormath ``color_diff_matrix.delta_e_cie2000`` (Kl = Kc = Kh = 1), with its own hue handling: the
    mean hue is (h1 + h2 + 360) / 2 whenever |h1 - h2| > 180 (never - 360), which can differ from the
    textbook CIEDE2000 (and from skimage's) in the rotation term."""
    L1, a1, b1 = (float(v) for v in lab1)
    L2, a2, b2 = (float(v) for v in lab2)
    avg_Lp = (L1 + L2) / 2.0
    C1, C2 = math.hypot(a1, b1), math.hypot(a2, b2)
    avg_C = (C1 + C2) / 2.0
    G = 0.5 * (1 - math.sqrt(avg_C ** 7.0 / (avg_C ** 7.0 + 25.0 ** 7.0)))
    a1p, a2p = (1.0 + G) * a1, (1.0 + G) * a2
    C1p, C2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    avg_Cp = (C1p + C2p) / 2.0
    h1p = math.degrees(math.atan2(b1, a1p))
    h1p += 360 if h1p < 0 else 0
    h2p = math.degrees(math.atan2(b2, a2p))
    h2p += 360 if h2p < 0 else 0
    avg_Hp = ((360 if abs(h1p - h2p) > 180 else 0) + h1p + h2p) / 2.0
    T = (1 - 0.17 * math.cos(math.radians(avg_Hp - 30)) + 0.24 * math.cos(math.radians(2 * avg_Hp))
         + 0.32 * math.cos(math.radians(3 * avg_Hp + 6)) - 0.2 * math.cos(math.radians(4 * avg_Hp - 63)))
    diff = h2p - h1p
    delta_hp = diff + (360 if abs(diff) > 180 else 0) - (720 if h2p > h1p else 0)
    delta_Lp, delta_Cp = L2 - L1, C2p - C1p
    delta_Hp = 2 * math.sqrt(C2p * C1p) * math.sin(math.radians(delta_hp) / 2.0)
    S_L = 1 + (0.015 * (avg_Lp - 50) ** 2) / math.sqrt(20 + (avg_Lp - 50) ** 2.0)
    S_C = 1 + 0.045 * avg_Cp
    S_H = 1 + 0.015 * avg_Cp * T
    delta_ro = 30 * math.exp(-(((avg_Hp - 275) / 25) ** 2.0))
    R_C = math.sqrt(avg_Cp ** 7.0 / (avg_Cp ** 7.0 + 25.0 ** 7.0))
    R_T = -2 * R_C * math.sin(2 * math.radians(delta_ro))
    return math.sqrt((delta_Lp / S_L) ** 2 + (delta_Cp / S_C) ** 2 + (delta_Hp / S_H) ** 2
                     + R_T * (delta_Cp / S_C) * (delta_Hp / S_H))


def color_similarity(c1: str, c2: str) -> float:
    """color_utils ``calculate_similarity_single``: two hex colours by colormath's CIEDE2000,
    ``max(0, 1 - dE / 100)``; two names (colormaps) by equality; a hex and a name 0."""
    if c1.startswith("#") and c2.startswith("#"):
        return max(0.0, 1 - delta_e_cie2000(srgb_to_lab(c1), srgb_to_lab(c2)) / 100)
    if not c1.startswith("#") and not c2.startswith("#"):
        return float(c1 == c2)
    return 0.0


def filter_colors(colors: list[str]) -> list[str]:
    """color_utils ``filter_color``: keep a colour only if it is not similar (> 0.7) to one kept before."""
    kept: list[str] = []
    for entry in colors:
        color = entry.split("--", 1)[1]
        if all(color_similarity(color, k.split("--", 1)[1]) <= FILTER_SIMILARITY for k in kept):
            kept.append(entry)
    return kept


def _best_pairing(generated: list[str], golden: list[str]) -> float:
    """The largest total similarity of a one-to-one pairing (calculate_similarity_parallel)."""
    from scipy.optimize import linear_sum_assignment

    if not generated or not golden:
        return 0.0
    matrix = np.array([[color_similarity(g, t) for t in golden] for g in generated])
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    return float(matrix[rows, cols].sum())


def color_f1(generated: list[str], golden: list[str]) -> float:
    """color_evaluator ``_calculate_metrics`` over ``"<function>--<colour>"`` records."""
    generated = filter_colors(generated) if len(generated) > MAX_COLORS_BEFORE_FILTER else list(generated)
    golden = filter_colors(golden) if len(golden) > MAX_COLORS_BEFORE_FILTER else list(golden)
    if not generated or not golden:
        return 0.0
    by_function: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for entry in generated:
        name, color = entry.split("--", 1)
        by_function[name][0].append(color)
    for entry in golden:
        name, color = entry.split("--", 1)
        by_function[name][1].append(color)
    total = sum(_best_pairing(gen, gold) for gen, gold in by_function.values())
    return _f1(total / len(generated), total / len(golden))


GRAPH_LAYOUT = {"nrows": 1, "ncols": 1, "row_start": 0, "row_end": 1, "col_start": 0, "col_end": 1}


def graph_layout(records: dict[str, Any]) -> list[dict]:
    """layout_evaluator ``_get_suffix_special_for_graph`` (code files whose path holds ``/graph``, the
    networkx charts): one fixed record per axes of the figure, whatever its gridspec."""
    n_axes = records.get("n_axes", len(records["layout"]))
    return [dict(GRAPH_LAYOUT) for _ in range(n_axes)]


def low_level_scores(golden: dict[str, Any], generated: dict[str, Any],
                     example_id: str | None = None) -> dict[str, float]:
    """The four official F1 scores of one generated program against its reference (records as written
    by the tracer: ``texts``, ``chart_types``, ``colors``, ``layout``). ``example_id`` (the chart's file
    name, e.g. ``graph_3``) selects the official layout records of the graph charts."""
    graph = example_id is not None and str(example_id).startswith("graph")
    gen_layout, gold_layout = ((graph_layout(generated), graph_layout(golden)) if graph
                               else (generated["layout"], golden["layout"]))
    return {"text": text_f1(generated["texts"], golden["texts"]),
            "layout": layout_f1(gen_layout, gold_layout),
            "type": chart_type_f1(generated["chart_types"], golden["chart_types"]),
            "color": color_f1(generated["colors"], golden["colors"])}

