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

The execution side: each program runs alone in :func:`kawhi.eval.sandbox.run_sandboxed`, which shows it
neither the host's processes nor its files, so the code under test never sees the reference. The
tracer runs in the program's own process and sends one JSON document (:data:`ELEMENT_KEYS` -> lists of
strings per figure) through the sandbox's result channel, never a file of the box. Since the program
could write that channel too, :func:`parse_elements` accepts only one document of exactly that shape
and bounded size; anything else, like a program that fails or a reference that does not run, scores
0 with the reason in ``error`` and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from typing import Any

from kawhi.eval.scorers.base import Scorer, check_lengths, mean_percent

ELEMENT_KEYS = ("texts", "types", "colors", "layout")  # the tracer's per-figure lists, what the F1s read
MAX_FIGURES, MAX_ITEMS, MAX_ITEM_CHARS = 64, 20_000, 2_000
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
    import os as _kx_os
    with open(int(_kx_os.environ["KAWHI_SANDBOX_CHANNEL_FD"]), "w", closefd=False) as fh:
        _kx_json.dump(list(_kx_seen.values()), fh)
'''


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


def parse_elements(raw: bytes) -> list[dict[str, Any]]:
    """The tracer's document, checked strictly: one JSON list of at most ``MAX_FIGURES`` figures, each
    ``{"error": str}`` or exactly :data:`ELEMENT_KEYS` -> lists of at most ``MAX_ITEMS`` strings of at
    most ``MAX_ITEM_CHARS`` characters. Raises ValueError saying what is wrong."""
    if not raw:
        raise ValueError("no elements: the program ended before the tracer wrote its figures")
    try:
        figures = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"malformed elements: {err}") from None
    if not isinstance(figures, list) or len(figures) > MAX_FIGURES:
        raise ValueError(f"malformed elements: expected a list of at most {MAX_FIGURES} figures")
    for i, figure in enumerate(figures):
        if isinstance(figure, dict) and set(figure) == {"error"} and isinstance(figure["error"], str):
            continue
        if not isinstance(figure, dict) or set(figure) != set(ELEMENT_KEYS):
            raise ValueError(f"malformed elements: figure {i} must have exactly the keys {list(ELEMENT_KEYS)}")
        for key in ELEMENT_KEYS:
            items = figure[key]
            if not (isinstance(items, list) and len(items) <= MAX_ITEMS
                    and all(isinstance(x, str) and len(x) <= MAX_ITEM_CHARS for x in items)):
                raise ValueError(f"malformed elements: figure {i} {key!r} must be a list of at most "
                                 f"{MAX_ITEMS} strings of at most {MAX_ITEM_CHARS} characters")
    return figures


def merge_figures(figures: list[dict[str, Any]]) -> dict[str, list[str]] | None:
    good = [f for f in figures if "error" not in f]
    if not good:
        return None
    return {k: [x for f in good for x in f[k]] for k in ELEMENT_KEYS}


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
        self._reference_cache: dict[str, tuple[dict[str, list[str]] | None, str]] = {}
        self._font_cache: dict[str, bytes] | None = None

    def font_cache(self) -> dict[str, bytes]:
        """matplotlib's font list, built once by a trusted sandbox run and copied into every later box
        (saves the font scan, ~0.4 s, per program)."""
        from kawhi.eval.sandbox import run_sandboxed

        if self._font_cache is None:
            result = run_sandboxed("import matplotlib.font_manager\n", collect=(".mplconfig/fontlist-*.json",),
                                   timeout_s=self.timeout_s)
            self._font_cache = result.files if result.ok else {}
        return self._font_cache

    def figure_elements(self, code: str) -> tuple[dict[str, list[str]] | None, str]:
        """(the traced elements of ``code``'s figures, "") or (None, why there are none)."""
        from kawhi.eval.sandbox import run_sandboxed

        result = run_sandboxed(TRACER + "\n" + code, timeout_s=self.timeout_s, cpu_s=self.cpu_s,
                               mem_mb=self.mem_mb, files=self.font_cache())
        if not result.ok:
            return None, result.reason or "failed"
        if result.channel_overflow:
            return None, "malformed elements: larger than the sandbox's result channel"
        try:
            elements = merge_figures(parse_elements(result.channel))
        except ValueError as err:
            return None, str(err)
        return elements, "" if elements else "no figure drawn"

    def reference_elements(self, row: dict[str, Any]) -> tuple[dict[str, list[str]] | None, str]:
        """The reference program's elements (cached by code), or (None, why it does not run)."""
        code = str(row.get("answer") or row.get("GroundTruthFigureCode") or "")
        key = hashlib.sha256(code.encode()).hexdigest()
        if key not in self._reference_cache:
            self._reference_cache[key] = self.figure_elements(code)
        return self._reference_cache[key]

    def score_sample(self, row: dict[str, Any], response: str) -> dict[str, Any]:
        code = extract_code(response)
        reference, reference_error = self.reference_elements(row)
        if reference is None:
            predicted, error = None, f"reference of row {row.get('id', '?')!r} does not run in the sandbox: {reference_error}"
        else:
            predicted, error = self.figure_elements(code) if code else (None, "no code in the response")
        if predicted is None:
            return {"extracted": code, "executed": False, "error": error, "score": 0.0,
                    "reference_failed": reference is None, **{k: 0.0 for k in LOW_LEVEL}}
        scores = low_level_scores(reference, predicted)
        return {"extracted": code, "executed": True, "error": "", "score": sum(scores.values()) / len(scores),
                "reference_failed": False, **scores}

    def aggregate(self, rows, scored) -> dict[str, float]:
        check_lengths(rows, scored)
        metrics = {"low_level": mean_percent(s["score"] for s in scored),
                   "exec_rate": mean_percent(float(s["executed"]) for s in scored),
                   "n_reference_failed": float(sum(bool(s.get("reference_failed")) for s in scored))}
        for key in LOW_LEVEL:
            metrics[key] = mean_percent(s[key] for s in scored)
        return metrics
