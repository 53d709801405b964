"""ChartMimic's element collection against the official one: the programs in
tests/fixtures/chartmimic_collection/ (bar, line, scatter, pie, hist, errorbar, stackplot/fill_between,
spans, imshow/contour/pcolor with colorbars, polar plot/scatter/fill, quiver, broken_barh, boxplot,
violinplot, hlines/vlines, Circle/Ellipse patches, texts/annotations/legends, GridSpec, subplot2grid and
twinx layouts) run through our tracer (``prepare_program``, the program the scorer runs in the sandbox)
and the records must equal what ChartMimic's own evaluators collected from them.

official_elements.json was produced by ChartMimic/ChartMimic at commit c9e149c under matplotlib 3.8.4
(its environment.yaml), numpy 1.26.1 and colormath 3.0.0 with the evaluators' own methods
(``TextEvaluator(use_position=False, use_axs=False)._log_texts``, ``ChartTypeEvaluator()._get_chart_types``,
``ColorEvaluator()._log_colors`` without its final ``filter_color``, ``LayoutEvaluator()._log_layouts``);
regenerate it with the command in tests/fixtures/chartmimic_collection/collect_official.py. This test
needs only the project's environment.

Compared up to what cannot be equal across matplotlib versions and does not change any score:
* names of plotting functions: the official ones are ``inspect.getfile(func)`` + name (e.g.
  ``matplotlib/__init__.py/bar`` for a ``_preprocess_data``-wrapped method), ours module + name; both are
  reduced to the function's name (``<module>.__init__`` for the patched constructors), which groups the
  same way. ``_makeline`` is ``_make_line`` since matplotlib 3.9; the official colour log of a polar plot
  or scatter appends ``_polar`` twice (``plot_polar_polar``), ours once.
* texts as a multiset: matplotlib >= 3.9's ``pie`` draws all labels before the percentages, 3.8
  alternates them; text F1 (``text_evaluator._calculate_metrics``) ignores the order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kawhi.eval.scorers.chartmimic_metrics import ELEMENTS_FILE, low_level_scores, prepare_program

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "chartmimic_collection"
OFFICIAL = json.loads((FIXTURES / "official_elements.json").read_text())
PROGRAMS = sorted(k for k in OFFICIAL if not k.startswith("_"))


def _short(path: str, name: str) -> str:
    if name == "__init__":   # Circle / Ellipse / NonUniformImage constructors: keep the module
        return path.rsplit("/", 1)[-1].removesuffix(".py").rsplit(".", 1)[-1] + ".__init__"
    return name


def official_type(key: str) -> str:
    """``<file>[_polar]-<name>`` (chart_type_evaluator_prefix.py log_function)."""
    path, name = key.rsplit("-", 1)
    return _short(path, name) + ("_polar" if path.endswith("_polar") else "")


def our_type(key: str) -> str:
    module, name = key.rsplit(".", 1)
    return _short(module, name)


def official_color(entry: str) -> str:
    """``<file>/<name>[_polar_polar]--<colour>`` (color_evaluator_prefix.py update_drawed_colors)."""
    func, color = entry.split("--", 1)
    path, name = func.rsplit("/", 1)
    return f"{_short(path, name).replace('_polar_polar', '_polar')}--{color}"


def our_color(entry: str) -> str:
    func, color = entry.split("--", 1)
    module, name = func.rsplit(".", 1)
    return f"{_short(module, name).replace('_make_line', '_makeline')}--{color}"


def collect(name: str, tmp: Path) -> dict:
    work = tmp / name
    work.mkdir()
    (work / "prog.py").write_text(prepare_program((FIXTURES / f"{name}.py").read_text()))
    done = subprocess.run([sys.executable, "prog.py"], cwd=work, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((work / ELEMENTS_FILE).read_text())


@pytest.fixture(scope="module")
def ours(tmp_path_factory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("collection")
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(PROGRAMS, pool.map(lambda n: collect(n, tmp), PROGRAMS)))


def test_fixture_provenance():
    assert OFFICIAL["_produced_by"] == {"chartmimic_commit": "c9e149c", "matplotlib": "3.8.4"}
    assert len(PROGRAMS) >= 8 and all((FIXTURES / f"{n}.py").exists() for n in PROGRAMS)


@pytest.mark.parametrize("name", PROGRAMS)
def test_texts_match_official(ours, name):
    assert Counter(ours[name]["texts"]) == Counter(OFFICIAL[name]["texts"])


@pytest.mark.parametrize("name", PROGRAMS)
def test_chart_types_match_official(ours, name):
    expected, got = Counter(), Counter()
    for key, count in OFFICIAL[name]["chart_types"].items():
        expected[official_type(key)] += count
    for key, count in ours[name]["chart_types"].items():
        got[our_type(key)] += count
    assert got == expected


@pytest.mark.parametrize("name", PROGRAMS)
def test_colors_match_official(ours, name):
    assert sorted(our_color(c) for c in ours[name]["colors"]) == sorted(official_color(c) for c in OFFICIAL[name]["colors"])


@pytest.mark.parametrize("name", PROGRAMS)
def test_layout_matches_official(ours, name):
    assert ours[name]["layout"] == OFFICIAL[name]["layout"]


def test_pairwise_scores_match_official_records(ours):
    """Every program scored against every other: the four F1s from our records equal those from the
    official records (names reduced as above, so both sides group functions the same way)."""
    def records(rec, type_name, color_name):
        types = Counter()
        for key, count in rec["chart_types"].items():
            types[type_name(key)] += count
        return {"texts": rec["texts"], "layout": rec["layout"], "chart_types": dict(types),
                "colors": sorted(color_name(c) for c in rec["colors"])}

    def official_records(name):
        return records(OFFICIAL[name], official_type, official_color)

    def our_records(name):
        return records(ours[name], our_type, our_color)

    for gold in PROGRAMS:
        for gen in PROGRAMS:
            expected = low_level_scores(official_records(gold), official_records(gen))
            got = low_level_scores(our_records(gold), our_records(gen))
            assert got == pytest.approx(expected), (gold, gen)
