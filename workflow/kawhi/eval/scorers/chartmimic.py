"""ChartMimic (direct mimic): code extraction, sandboxed execution, execution rate and the low-level
scores (text, layout, type, colour F1).

Official ChartMimic traces matplotlib calls while running the generated and the reference code, and
matches colours by CIEDE2000 distance per chart type; its high-level score is a GPT-4o judgement. This
scorer runs both programs in :func:`kawhi.eval.sandbox.run_sandboxed` with a small tracer that reads
the *finished figures* (at ``savefig``/``show``/``close`` and at exit) and computes F1 between
reference and prediction over: the figure's texts (titles, labels, tick labels, legend entries,
annotations; multiset), its layout (each axes' subplot-grid geometry; multiset), its element types
(line, bar, scatter, pie, heatmap, ...; set) and its colours (hex colours of the data artists; exact
multiset match). The per-sample score is the mean of the four, 0 when the code does not run. No
high-level (GPT) score.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from typing import Any

from kawhi.eval.scorers.base import Scorer, check_lengths, mean_percent

ELEMENTS_FILE = "kawhi_elements.json"
LOW_LEVEL = ("text", "layout", "type", "color")
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL | re.IGNORECASE)

# Runs inside the sandbox before the code under test; it only reads the figures the code draws.
TRACER = r'''
import atexit as _kx_atexit, json as _kx_json
import matplotlib as _kx_mpl
_kx_mpl.use("Agg")
import matplotlib.colors as _kx_colors, matplotlib.figure as _kx_figure, matplotlib.pyplot as _kx_plt
_kx_seen = {}
_KX_TYPES = {"Line2D": "line", "Rectangle": "bar", "Wedge": "pie", "PathCollection": "scatter",
             "PolyCollection": "fill", "FillBetweenPolyCollection": "fill", "LineCollection": "lines",
             "QuadMesh": "heatmap", "AxesImage": "image", "Polygon": "polygon", "Ellipse": "ellipse",
             "Circle": "circle", "PathPatch": "path", "FancyBboxPatch": "box", "Poly3DCollection": "surface"}
def _kx_hex(c):
    try:
        return _kx_colors.to_hex(c, keep_alpha=False)
    except Exception:
        return None
def _kx_describe(fig):
    fig.canvas.draw()
    texts, types, colors, layout = [], [], [], []
    def text(t):
        if t is not None and t.get_visible() and t.get_text().strip():
            texts.append(t.get_text().strip())
    text(getattr(fig, "_suptitle", None))
    for t in fig.texts:
        text(t)
    for ax in fig.axes:
        for t in (ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None),
                  ax.xaxis.label, ax.yaxis.label):
            text(t)
        for t in ax.get_xticklabels() + ax.get_yticklabels() + list(ax.texts):
            text(t)
        legend = ax.get_legend()
        if legend is not None:
            for t in legend.get_texts():
                text(t)
        spec = ax.get_subplotspec() if hasattr(ax, "get_subplotspec") else None
        if spec is not None:
            nrows, ncols, start, stop = spec.get_geometry()
            layout.append(f"{nrows}x{ncols}:{start}-{stop}")
        else:
            box = ax.get_position()
            layout.append(f"at:{box.x0:.2f},{box.y0:.2f},{box.width:.2f},{box.height:.2f}")
        for artist in list(ax.lines) + list(ax.patches) + list(ax.collections) + list(ax.images):
            kind = _KX_TYPES.get(type(artist).__name__, type(artist).__name__.lower())
            types.append(kind)
            if kind == "line":
                colors.append(_kx_hex(artist.get_color()))
            elif kind in ("heatmap", "image"):
                continue
            elif hasattr(artist, "get_facecolors"):
                colors.extend(sorted({_kx_hex(c) for c in artist.get_facecolors()} - {None}))
            elif hasattr(artist, "get_facecolor"):
                colors.append(_kx_hex(artist.get_facecolor()))
    return {"texts": texts, "types": types, "colors": [c for c in colors if c], "layout": layout}
def _kx_snap_all():
    for num in _kx_plt.get_fignums():
        fig = _kx_plt.figure(num)
        try:
            _kx_seen[id(fig)] = _kx_describe(fig)
        except Exception as err:
            _kx_seen[id(fig)] = {"error": repr(err)}
_kx_savefig = _kx_figure.Figure.savefig
def _kx_savefig_traced(self, *args, **kwargs):
    try:
        _kx_seen[id(self)] = _kx_describe(self)
    except Exception as err:
        _kx_seen[id(self)] = {"error": repr(err)}
    return _kx_savefig(self, *args, **kwargs)
_kx_figure.Figure.savefig = _kx_savefig_traced
_kx_close, _kx_show = _kx_plt.close, _kx_plt.show
def _kx_close_traced(*args, **kwargs):
    _kx_snap_all()
    return _kx_close(*args, **kwargs)
def _kx_show_traced(*args, **kwargs):
    _kx_snap_all()
_kx_plt.close, _kx_plt.show = _kx_close_traced, _kx_show_traced
@_kx_atexit.register
def _kx_dump():
    _kx_snap_all()
    with open("ELEMENTS_FILE", "w") as fh:
        _kx_json.dump(list(_kx_seen.values()), fh)
'''.replace("ELEMENTS_FILE", ELEMENTS_FILE)


def extract_code(response: str) -> str | None:
    """The Python program in a response: the longest fenced block, else the whole response when it
    looks like matplotlib code; None when there is none."""
    blocks = [b for b in _FENCE.findall(response or "") if b.strip()]
    if blocks:
        return max(blocks, key=len)
    if re.search(r"^\s*(import matplotlib|from matplotlib|import numpy)", response or "", re.MULTILINE):
        return response
    return None


def f1(reference: list[str], predicted: list[str], as_set: bool = False) -> float:
    """F1 of matched items (multisets, or sets); 1.0 when both are empty."""
    ref, pred = (Counter(set(reference)), Counter(set(predicted))) if as_set else (Counter(reference), Counter(predicted))
    if not ref and not pred:
        return 1.0
    common = sum((ref & pred).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(pred.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def merge_figures(figures: list[dict[str, Any]]) -> dict[str, list[str]] | None:
    good = [f for f in figures if "error" not in f]
    if not good:
        return None
    return {k: [x for f in good for x in f[k]] for k in ("texts", "types", "colors", "layout")}


def low_level_scores(reference: dict[str, list[str]], predicted: dict[str, list[str]]) -> dict[str, float]:
    return {"text": f1(reference["texts"], predicted["texts"]),
            "layout": f1(reference["layout"], predicted["layout"]),
            "type": f1(reference["types"], predicted["types"], as_set=True),
            "color": f1(reference["colors"], predicted["colors"])}


class ChartMimicScorer(Scorer):
    primary = "low_level"
    timeout_s, cpu_s, mem_mb = 60.0, 60, 2048

    def __init__(self, name: str, judge=None) -> None:
        super().__init__(name, judge)
        self._reference_cache: dict[str, dict[str, list[str]] | None] = {}

    def figure_elements(self, code: str) -> tuple[dict[str, list[str]] | None, str]:
        """(the traced elements of ``code``'s figures or None if it failed, the error tail)."""
        from kawhi.eval.sandbox import run_sandboxed

        result = run_sandboxed(TRACER + "\n" + code, timeout_s=self.timeout_s, cpu_s=self.cpu_s,
                               mem_mb=self.mem_mb, collect=(ELEMENTS_FILE,))
        if not result.ok or ELEMENTS_FILE not in result.files:
            reason = "timeout" if result.timed_out else result.stderr.strip().splitlines()[-1:] or ["failed"]
            return None, reason if isinstance(reason, str) else reason[0]
        elements = merge_figures(json.loads(result.files[ELEMENTS_FILE]))
        return elements, "" if elements else "no figure drawn"

    def reference_elements(self, row: dict[str, Any]) -> dict[str, list[str]]:
        code = str(row.get("answer") or row.get("GroundTruthFigureCode") or "")
        key = hashlib.sha256(code.encode()).hexdigest()
        if key not in self._reference_cache:
            self._reference_cache[key] = self.figure_elements(code)[0]
        reference = self._reference_cache[key]
        if reference is None:
            raise ValueError(f"ChartMimic row {row.get('id', '?')!r}: the reference code does not run in the sandbox")
        return reference

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        reference = self.reference_elements(row)
        code = extract_code(response)
        predicted, error = self.figure_elements(code) if code else (None, "no code in the response")
        if predicted is None:
            return {"extracted": code, "executed": False, "error": error, "score": 0.0,
                    **{k: 0.0 for k in LOW_LEVEL}}
        scores = low_level_scores(reference, predicted)
        return {"extracted": code, "executed": True, "error": "", "score": sum(scores.values()) / len(scores), **scores}

    def aggregate(self, rows, scored) -> dict[str, float]:
        check_lengths(rows, scored)
        metrics = {"low_level": mean_percent(s["score"] for s in scored),
                   "exec_rate": mean_percent(float(s["executed"]) for s in scored)}
        for key in LOW_LEVEL:
            metrics[key] = mean_percent(s[key] for s in scored)
        return metrics
