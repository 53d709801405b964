"""kawhi.report.grid: the runs of the grid and what each report artefact reads, as plain functions of the config."""

from __future__ import annotations

import copy
import json
import shlex
from collections import Counter

import pytest

from kawhi.config import load_config, validate_config
from kawhi.report import grid
from kawhi.report.manifest import BASE_ROW, EvalEntry, RunEntry


@pytest.fixture(scope="module")
def embedded(repo_root):
    """The embedded default (config/config.yaml): two tiny models, GRPO/DAPO/GSPO x {baseline, kawhi}, seeds 0 and 1."""
    return load_config(repo_root / "config" / "config.yaml")


@pytest.fixture(scope="module")
def paper(repo_root):
    return load_config(repo_root / "config" / "paper.yaml")


def _with_grid(config, **grid_keys):
    changed = copy.deepcopy(config)
    changed["grid"].update(grid_keys)
    return validate_config(changed)


def test_embedded_run_list(embedded):
    runs = grid.all_runs(embedded)
    # 24 main (2 models x 3 algorithms x 2 variants x 2 seeds) + 6 baselines (3 x 2 seeds) + 4 chart runs
    # + 14 sweep variants x 1 ablation seed, less the sweep's "kawhi" run that Table 1 already trains: 47,
    # the train jobs of `snakemake -n`
    assert len(runs) == 47 and len(set(runs)) == 47
    assert len(grid.main_runs(embedded)) == 24 and len(grid.chart_runs(embedded)) == 4
    assert ("qwen25vl-tiny", "math", "grpo", "kawhi", 0) in runs
    assert ("qwen3vl-tiny", "math", "gspo", "baseline", 1) in runs
    assert ("qwen25vl-tiny", "chart", "grpo", "kawhi", 1) in runs
    assert ("qwen25vl-tiny", "math", "step-grpo", "baseline", 1) in runs  # a fine-grained reward baseline
    assert ("qwen25vl-tiny", "math", "grpo", "kawhi-skip03", 0) in runs  # a sweep: first model, ablation seed
    assert ("qwen25vl-tiny", "math", "grpo", "kawhi-skip03", 1) not in runs
    assert not any(m == "qwen3vl-tiny" and t == "chart" for m, t, *_ in runs)  # the chart experiment: first model


def test_paper_run_list(paper):
    assert len(grid.all_runs(paper)) == 30  # the train jobs of `snakemake -n --configfile config/paper.yaml`


def test_seeds_follow_grid_seeds(embedded):
    three = _with_grid(embedded, seeds=[0, 1, 2])
    assert len(grid.main_runs(three)) == 36
    assert len(grid.all_runs(three)) == 47 + 12 + 3 + 2  # main, baselines, chart
    assert ("qwen3vl-tiny", "math", "dapo", "kawhi", 2) in grid.all_runs(three)
    assert ("qwen3vl-tiny", "math", "dapo", "kawhi", 2) not in grid.all_runs(embedded)
    # a run in Table 1 and in a sweep keeps the seeds of both lists
    assert grid.run_seeds(three, "qwen25vl-tiny", "math", "grpo", "kawhi") == [0, 1, 2]
    assert grid.run_seeds(three, "qwen25vl-tiny", "math", "grpo", "kawhi-skip03") == [0]


def test_table1_pairs_baseline_and_kawhi_per_algorithm_and_seed(embedded):
    entries = grid.table1_entries(embedded)
    assert all(isinstance(e, EvalEntry) for e in entries)
    benches = set(embedded["math_benchmarks"])
    assert {e.benchmark for e in entries} == benches
    for model in embedded["models"]:
        base = [e for e in entries if e.model == model and e.algo == BASE_ROW]
        assert {e.path for e in base} == {f"results/eval/{model}/base/{b}.json" for b in benches}
        for algo in embedded["grid"]["algorithms"]:
            for seed in embedded["grid"]["seeds"]:
                for b in benches:
                    key = (model, algo, seed, b)
                    pair = {e.variant: e for e in entries if (e.model, e.algo, e.seed, e.benchmark) == key}
                    assert set(pair) == {"baseline", "kawhi"}
                    assert not pair["baseline"].kawhi and pair["kawhi"].kawhi
                    assert pair["kawhi"].path == f"results/eval/{model}/math/{algo}/kawhi/seed-{seed}/{b}.json"
    baselines = {e.algo for e in entries if e.algo in embedded["grid"]["baselines"]}
    assert baselines == set(embedded["grid"]["baselines"])
    assert {e.model for e in entries if e.algo in baselines} == {"qwen25vl-tiny"}
    # per model: a base row of 2 + (3 algorithms x 2 variants x 2 seeds) x 2 benchmarks; the first model's
    # 3 baselines x 2 seeds x 2 benchmarks on top
    assert len(entries) == 2 * (2 + 24) + 12
    assert len(set(entries)) == len(entries)


def test_sweep_and_figure_entries(embedded):
    table2 = grid.table2_entries(embedded)
    ablations = embedded["grid"]["ablation_variants"]
    assert list(dict.fromkeys(e.variant for e in table2)) == ["baseline", "kawhi"] + ablations
    assert {(e.model, e.algo) for e in table2} == {("qwen25vl-tiny", "grpo")}
    figure7 = grid.figure7_entries(embedded)
    assert list(dict.fromkeys(e.variant for e in figure7))[:2] == ["baseline", "kawhi"]
    assert {e.variant for e in figure7} == {"baseline", "kawhi", *embedded["grid"]["skip_ratio_variants"]}
    figure4 = grid.figure4_entries(embedded)
    assert {e.trainset for e in figure4} == {"", "chart"}
    assert {e.benchmark for e in figure4} == set(embedded["chart_benchmarks"])
    summary = grid.summary_entries(embedded)
    assert set(summary) == set(grid.table1_entries(embedded)) | set(figure4)
    assert all(e.algo == "grpo" and e.variant == "baseline" for e in grid.figure1_entries(embedded))


def test_run_entries_name_done_json(embedded):
    curves = grid.curves_runs(embedded)
    assert all(isinstance(r, RunEntry) and r.done.endswith("/done.json") for r in curves)
    assert len(curves) == 24 + 4
    gallery = grid.gallery_runs(embedded)
    assert [(r.variant, r.seed) for r in gallery] == [("kawhi", 0)]
    assert grid.report_inputs(embedded, "gallery") == ["results/train/qwen25vl-tiny/math/grpo/kawhi/seed-0/done.json"]


def test_manifest_and_inputs_agree(embedded):
    for name in grid.ARTEFACTS:
        inputs = grid.report_inputs(embedded, name)
        files = inputs["evals"] if isinstance(inputs, dict) else inputs
        if "manifest" in grid.ARTEFACTS[name].params and name != "figure3":
            manifest = json.loads(grid.report_param(embedded, name, "manifest"))
            assert [m.get("path") or m.get("done") for m in manifest] == files, name
    figure1 = grid.report_inputs(embedded, "figure1")
    assert figure1["data"] == [f"results/data/{b}/test.parquet" for b in embedded["math_benchmarks"]]
    assert grid.report_param(embedded, "figure1", "data") == [f"{b}=results/data/{b}/test.parquet"
                                                                for b in embedded["math_benchmarks"]]
    ratios = json.loads(grid.report_param(embedded, "figure7", "skip_ratios"))
    assert set(ratios) == {"kawhi", *embedded["grid"]["skip_ratio_variants"]}
    assert grid.report_param(embedded, "selector", "reference") == "kawhi"


def test_artefact_table(embedded):
    outputs = {key: grid.report_file(file) for key, (file, _) in grid.ARTEFACTS["table1"].outputs.items()}
    arguments = grid.report_arguments(embedded, "table1", grid.report_inputs(embedded, "table1"), outputs)
    manifest = grid.report_param(embedded, "table1", "manifest")
    assert shlex.split(arguments) == ["table1", "--manifest", manifest, "--out-csv", "results/report/table1.csv",
                                      "--out-md", "results/report/table1.md", "--out-tex", "results/report/table1.tex"]
    warmstart = grid.report_inputs(embedded, "warmstart")
    assert grid.report_arguments(embedded, "warmstart", warmstart, {"csv": "w.csv", "md": "w.md"}) == (
        f"warmstart --results {' '.join(warmstart)} --out-csv w.csv --out-md w.md")
    figure1 = shlex.split(grid.report_arguments(embedded, "figure1", [], {"json": "j", "png": "p", "pdf": "f"}))
    data = figure1[figure1.index("--data") + 1:figure1.index("--judge")]
    assert data == grid.report_param(embedded, "figure1", "data")
    assert figure1[-6:] == ["--out-json", "j", "--out-png", "p", "--out-pdf", "f"]
    assert grid.ARTEFACTS["summary"].files() == ["results/report/summary.json", "results/report/summary.md",
                                                 "results/report/headline.rst"]
    assert grid.report_entry("figure4", "tex") is None
    assert grid.report_entry("figure4", "csv") == {"caption": "../report/figure4.rst", "category": "Tables",
                                                   "labels": {"table": "chart results", "format": "csv"}}
    files = [f for a in grid.ARTEFACTS.values() for f in a.files()]
    assert len(files) == len(set(files)) == 39  # what rule all builds, less the two models
    # a sweep without variants has no figure
    assert set(grid.report_artefacts(embedded)) == set(grid.ARTEFACTS)
    bare = _with_grid(embedded, skip_ratio_variants=[], selector_variants=[])
    assert set(grid.ARTEFACTS) - set(grid.report_artefacts(bare)) == {"figure7", "selector"}


def test_paths_and_policy(embedded):
    assert grid.policy_dir(embedded, "qwen25vl-tiny") == "results/models/qwen25vl-tiny/sft"  # tiny: SFT warm-start
    no_sft = copy.deepcopy(embedded)
    no_sft["sft"]["enabled"] = False
    assert grid.policy_dir(no_sft, "qwen25vl-tiny") == "results/models/qwen25vl-tiny/base"
    assert grid.eval_run_json("m", "math", "grpo", "kawhi", 0, "b") == grid.EVAL_RUN.format(
        model="m", trainset="math", algo="grpo", variant="kawhi", seed=0, bench="b")
    assert grid.train_data_files(embedded, "math", "grpo") == [
        f"results/data/{s}/train.parquet" for s in embedded["train_data"]["suites"]]
    for trainset in ("math", "chart"):  # each benchmark once per evaluation job
        assert Counter(grid.run_benchmarks(embedded, trainset)).most_common(1)[0][1] == 1
    assert Counter(grid.base_benchmarks(embedded, "qwen25vl-tiny")).most_common(1)[0][1] == 1


@pytest.mark.parametrize("profile", ["embedded", "paper"])
def test_every_eval_the_report_reads_is_made_by_a_checkpoints_evaluation_job(profile, request):
    """One evaluation job per checkpoint (rules/eval.smk) writes the benchmarks of grid.base_benchmarks /
    grid.run_benchmarks; every eval file any artefact reads must be one of them, and a run's list must
    not carry benchmarks the report never reads from any run of its training set."""
    config = request.getfixturevalue(profile)
    made = {grid.eval_base_json(m, b) for m in grid.models(config) for b in grid.base_benchmarks(config, m)}
    made |= {grid.eval_run_json(*run, b) for run in grid.all_runs(config) for b in grid.run_benchmarks(config, run[1])}
    entries = [e for a in grid.ARTEFACTS if a != "warmstart" for e in grid.report_entries(config, a)
               if isinstance(e, EvalEntry)]
    read = {e.path for e in entries} | set(grid.warmstart_inputs(config))
    assert read <= made, sorted(read - made)[:5]
    for trainset in ("math", "chart"):
        benches_read = {e.benchmark for e in entries if e.algo != BASE_ROW and e.trainset == trainset}
        assert set(grid.run_benchmarks(config, trainset)) == benches_read, trainset
    # the second model's base policy is not scored on the chart benchmarks: only the first model's chart
    # experiment reads them
    second = grid.models(config)[1]
    assert not set(grid.base_benchmarks(config, second)) & set(config["chart_benchmarks"])
