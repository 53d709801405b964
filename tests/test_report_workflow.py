"""The report rules through Snakemake on hand-made results: artefacts, the HTML report, reruns.

A small workflow includes the real rules/common.smk and rules/report.smk over a results/ tree of
hand-made eval JSONs, training logs and head sweeps (nothing upstream is run), so this test needs no
model and exercises exactly the report stage: manifests, shell lines, report() captions, named targets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.report_fixtures import (
    ABLATIONS,
    ALGOS,
    item_scores_for,
    make_entry,
    write_heads,
    write_rollouts,
    write_run,
    write_samples,
)

MODELS = ("m-a", "m-b")
MATH = ("shapes_count", "shapes_arith")
CHART = ("bars_lookup", "lines_compare")


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               PATH=str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run([str(bin_dir / "snakemake"), "--cores", "1", *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=900)


def _jobs(dry_run_output: str) -> set[str]:
    import re

    return set(re.findall(r"^(?:local)?rule (\S+):$", dry_run_output, re.MULTILINE))


@pytest.fixture(scope="module")
def workflow_dir(tmp_path_factory, repo_root):
    from kawhi.data.synthetic import write_suite

    root = tmp_path_factory.mktemp("report-workflow")
    config = {"models": {m: {"arch": "qwen2_5_vl"} for m in MODELS},
              "math_benchmarks": list(MATH), "chart_benchmarks": list(CHART),
              "ablation_benchmarks": list(MATH),
              # one seed and no fine-grained baselines: the report stage over the main, chart and ablation runs
              "grid": {"seeds": [0], "ablation_seeds": [0], "baselines": [], "ablation_variants": list(ABLATIONS)}}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    (root / "Snakefile").write_text(f'''
from snakemake.utils import validate
configfile: "config.yaml"
validate(config, schema="{repo_root}/config/schema/config.schema.yaml", set_default=True)
include: "{repo_root}/rules/common.smk"
include: "{repo_root}/rules/report.smk"
rule all:
    input: REPORT_TARGETS
''')
    results = root / "results"
    rows = {}
    for b in MATH:
        data = write_suite(suite=b, split="test", n=6, seed=0, out=results / "data" / b / "test.parquet")
        rows[b] = [{k: (list(v) if hasattr(v, "tolist") else v) for k, v in r.items()}
                   for r in pd.read_parquet(data).drop(columns=["image"]).to_dict("records")]
    for m in MODELS:
        for b in MATH:
            make_entry(results, m, "base", "", b)
        for a in ALGOS:
            for v in ("baseline", "kawhi"):
                for b in MATH:
                    make_entry(results, m, a, v, b)
                run = write_run(results, m, a, v)
                if m == MODELS[0] and a == "grpo" and v == "kawhi":
                    write_rollouts(run, 4)
        write_heads(results, m)
    # the chart experiment: the first model's base row and its own GRPO runs on the chart training set
    for b in CHART:
        make_entry(results, MODELS[0], "base", "", b)
    for v in ("baseline", "kawhi"):
        for b in CHART:
            make_entry(results, MODELS[0], "grpo", v, b, trainset="chart")
        write_run(results, MODELS[0], "grpo", v, trainset="chart")
    for v in ABLATIONS:
        for b in MATH:
            make_entry(results, MODELS[0], "grpo", v, b)
    # every math result scores the suite's test items (Figure 1's example cases find their images; the
    # paired statistics compare item by item), each file's item scores averaging to its metric
    for path in (results / "eval").rglob("*.json"):
        b = path.stem
        if b in MATH:
            doc = json.loads(path.read_text())
            scores = item_scores_for(doc["metrics"][doc["primary"]], len(rows[b]))
            write_samples(path, [{**r, "response": "The answer is \\boxed{99}.", "score": sc}
                                 for r, sc in zip(rows[b], scores)])
    return root


@pytest.mark.slow
def test_report_rules_build_every_artefact_and_the_html_report(workflow_dir):
    run = _snakemake(workflow_dir)
    assert run.returncode == 0, run.stderr[-4000:]
    report_dir = workflow_dir / "results" / "report"
    for name in ("table1.csv", "table1.md", "table1.tex", "table2.csv", "figure1.png", "figure1.pdf",
                 "figure1.json", "figure3.png", "figure4.pdf", "figure5.png", "figure5.csv", "curves.png", "curves.csv",
                 "gallery.png", "summary.json", "summary.md", "headline.rst"):
        assert (report_dir / name).stat().st_size > 0, name
    table1 = pd.read_csv(report_dir / "table1.csv")
    assert len(table1) == len(MODELS) * (1 + 2 * len(ALGOS))
    summary = json.loads((report_dir / "summary.json").read_text())
    assert summary["n_models"] == 2 and summary["n_frameworks"] == 3
    assert summary["n_benchmarks"] == len(MATH) + len(CHART)

    html = workflow_dir / "report.html"
    rep = _snakemake(workflow_dir, "--report", str(html))
    assert rep.returncode == 0, rep.stderr[-4000:]
    text = html.read_text(errors="replace")
    assert len(text) > 100_000  # self-contained: the figures are embedded
    for caption in ("Main results", "ablations", "why the RL-trained model fails", "vision-critical heads", "training cost",
                    "chart understanding", "Training curves", "KAWHI gallery", "Performance summary"):
        assert caption.lower() in text.lower(), caption

    # nothing to do on a second run
    again = _snakemake(workflow_dir, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    # one ablation result changes -> only Table 2 is rebuilt
    changed = workflow_dir / "results" / "eval" / MODELS[0] / "math" / "grpo" / "kawhi-kk" / "seed-0" / "shapes_count.json"
    doc = json.loads(changed.read_text())
    doc["metrics"][doc["primary"]] += 1.0
    changed.write_text(json.dumps(doc))
    dry = _snakemake(workflow_dir, "-n")
    assert dry.returncode == 0, dry.stderr[-4000:]
    assert _jobs(dry.stdout) == {"make_table2", "all"}
    assert _snakemake(workflow_dir).returncode == 0

    # a chart result of GRPO+KAWHI feeds Figure 4 and the summary, not the tables
    changed = workflow_dir / "results" / "eval" / MODELS[0] / "chart" / "grpo" / "kawhi" / "seed-0" / "bars_lookup.json"
    doc = json.loads(changed.read_text())
    doc["metrics"][doc["primary"]] -= 1.0
    changed.write_text(json.dumps(doc))
    dry = _snakemake(workflow_dir, "-n")
    assert _jobs(dry.stdout) == {"make_figure4", "make_summary", "all"}


def test_named_target_builds_only_its_artefact(workflow_dir):
    dry = _snakemake(workflow_dir, "-n", "--forceall", "table1")
    assert dry.returncode == 0, dry.stderr[-4000:]
    assert _jobs(dry.stdout) == {"make_table1", "table1"}
