"""Dry runs of the real Snakefile: the paper grid's whole DAG, offline, and a named target's sub-DAG.

The expectations are derived from the config on their own (not through rules/common.smk), so a change to
the DAG's input functions that drops or adds a run, an evaluation or an artefact fails here. A run is
(model, trainset, algo, variant, seed), as the train rule's wildcards and results/train/ lay it out.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from kawhi.config import kawhi_settings, load_config, variant_changes
from tests.report_fixtures import snakemake_dry_run

RUN_KEYS = ("model", "trainset", "algo", "variant", "seed")


def _classify(jobs):
    """Heads, training and eval jobs, by what they write (rule names belong to their stages)."""
    heads = [j for j in jobs if any(o.endswith("/critical_heads.json") for o in j.outputs)]
    train = [j for j in jobs if any(o.startswith("results/train/") and o.endswith("/done.json") for o in j.outputs)]
    evals = [j for j in jobs if any(o.startswith("results/eval/") and o.endswith(".json") for o in j.outputs)]
    return heads, train, evals


def _run_key(job):
    return tuple(job.wildcards[k] for k in RUN_KEYS)


def _eval_keys(job):
    """One key per result JSON an evaluation job writes (one job per checkpoint, all its benchmarks):
    (model, "base", bench) for the base policy, (model, trainset, algo, variant, seed, bench) for a run."""
    checkpoint = (job.wildcards["model"], "base") if "trainset" not in job.wildcards else _run_key(job)
    return [(*checkpoint, o.rsplit("/", 1)[1].removesuffix(".json")) for o in job.outputs if o.endswith(".json")]


def _first_model(config):
    return list(config["models"])[0]


def _plain(config):
    return next(v for v in config["grid"]["variants"] if not kawhi_settings(config, v).enabled)


def _full(config):
    return next(v for v in config["grid"]["variants"]
                if kawhi_settings(config, v).enabled and not variant_changes(config, v))


def _chart_algo(config):
    algos = config["grid"]["algorithms"]
    return "grpo" if "grpo" in algos else algos[0]


def _expected_runs(config):
    """Every training run of the grid, with its seeds: main, fine-grained baselines, chart, ablations and sweeps."""
    grid, first = config["grid"], _first_model(config)
    seeds, sweep_seeds = [str(s) for s in grid["seeds"]], [str(s) for s in grid["ablation_seeds"]]
    main = {(m, "math", a, v, s) for m in config["models"] for a in grid["algorithms"] for v in grid["variants"]
            for s in seeds}
    baselines = {(first, "math", b, _plain(config), s) for b in grid["baselines"] for s in seeds}
    chart = {(first, "chart", _chart_algo(config), v, s) for v in grid["variants"] for s in seeds}
    sweep_variants = grid["ablation_variants"] + grid["skip_ratio_variants"] + grid["selector_variants"]
    sweeps = {(first, "math", grid["ablation_algorithm"], v, s) for v in sweep_variants for s in sweep_seeds}
    return {"main": main, "baselines": baselines, "chart": chart, "sweeps": sweeps}


def _row(runs, model, trainset, algo, variant):
    """Every seed of one table row (a run in Table 1 and in a sweep keeps the seeds of both)."""
    return {r for r in runs if r[:4] == (model, trainset, algo, variant)}


def _expected_evals(config):
    """Every (checkpoint, benchmark) the tables, figures and summary read."""
    grid, first = config["grid"], _first_model(config)
    parts = _expected_runs(config)
    runs = set().union(*parts.values())
    math, chart, ablation = config["math_benchmarks"], config["chart_benchmarks"], config["ablation_benchmarks"]
    figure1 = config["report"].get("figure1_benchmarks") or math
    keys = set()
    for m in config["models"]:
        keys |= {(m, "base", b) for b in math}  # Table 1's base row
    keys |= {(first, "base", b) for b in chart}  # Figure 4's base row
    keys |= {(*r, b) for r in parts["main"] | parts["baselines"] for b in math}  # Table 1
    keys |= {(*r, b) for m in config["models"] for r in _row(runs, m, "math", _chart_algo(config), _plain(config))
             for b in figure1}  # Figure 1
    keys |= {(*r, b) for r in parts["chart"] for b in chart}  # Figure 4
    algo = grid["ablation_algorithm"]
    table2 = grid["variants"] + grid["ablation_variants"]
    figure7 = [_plain(config), _full(config)] + grid["skip_ratio_variants"]
    selector = [_plain(config), _full(config)] + grid["selector_variants"]
    for variants, benches in ((table2, ablation), (figure7, ablation), (selector, math)):
        keys |= {(*r, b) for v in variants for r in _row(runs, first, "math", algo, v) for b in benches}
    return keys


@functools.lru_cache(maxsize=None)
def _target_rules(repo_root) -> frozenset[str]:
    """The rules without wildcards, as Snakemake lists them (`snakemake --list-target-rules`)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--list-target-rules"], cwd=repo_root,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return frozenset(proc.stdout.split())


def _report_rules(repo_root, config):
    """The named targets of the report stage: rules/report.smk generates, from one table, an artefact rule
    make_X and its named target X for each artefact; Snakemake lists both."""
    rules = _target_rules(repo_root)
    artefacts = {r.removeprefix("make_") for r in rules if r.startswith("make_")}
    assert artefacts and artefacts <= rules, "every artefact rule make_X has its named target X"
    # a sweep without variants has no figure (report.smk's REPORT_TARGETS)
    if not config["grid"]["skip_ratio_variants"]:
        artefacts.discard("figure7")
    if not config["grid"]["selector_variants"]:
        artefacts.discard("selector")
    return artefacts


def _settings(job):
    """The --settings JSON the train rule passes to `kawhi train` (from the dry run's shell command)."""
    argv = shlex.split(job.shell)
    return json.loads(argv[argv.index("--settings") + 1])


def _shell_option(job, name):
    argv = shlex.split(job.shell)
    return argv[argv.index(name) + 1] if name in argv else None


@pytest.fixture(scope="module")
def paper_jobs(repo_root):
    """The paper grid's whole DAG, with each job's shell command (-p)."""
    return snakemake_dry_run(repo_root, "--forceall", "-p", "--configfile", "config/paper.yaml")


def test_paper_dry_run_lists_the_whole_grid(repo_root, paper_jobs):
    config, jobs = load_config(repo_root / "config" / "paper.yaml"), paper_jobs
    counts = Counter(j.rule for j in jobs)
    print("\npaper grid dry run, jobs per rule:", dict(sorted(counts.items())), "total", sum(counts.values()))

    heads, train, evals = _classify(jobs)
    models, grid = list(config["models"]), config["grid"]
    # what the paper fixes: its two models, three algorithms with and without KAWHI, three fine-grained baselines
    assert models == ["qwen25vl-7b", "qwen3vl-4b"]
    assert grid["algorithms"] == ["grpo", "dapo", "gspo"] and grid["variants"] == ["baseline", "kawhi"]
    assert sorted(grid["baselines"]) == ["ft-rl", "step-grpo", "vppo"]
    assert Counter(j.wildcards["model"] for j in heads) == {m: 1 for m in models}

    runs = Counter(_run_key(j) for j in train)
    assert max(runs.values()) == 1  # one training job per run and seed
    parts = _expected_runs(config)
    expected = set().union(*parts.values())
    assert set(runs) == expected, (sorted(set(runs) - expected), sorted(expected - set(runs)))
    for m in models:  # per model the 3 x 2 main runs, every seed, on the math trainset
        main = {r for r in runs if r[0] == m and r[2] in grid["algorithms"] and r[3] in grid["variants"]
                and r[1] == "math"}
        assert main == {r for r in parts["main"] if r[0] == m}, m
        assert len(main) == 3 * 2 * len(grid["seeds"]), m
    others = {r for r in runs if r[0] != models[0]}  # ablations, sweeps, chart runs, baselines: first model only
    assert others == {r for r in parts["main"] if r[0] != models[0]}
    assert {r[2] for r in runs if r[1] == "chart"} == {"grpo"}  # the chart experiment: GRPO and GRPO+KAWHI
    assert {r[3] for r in runs if r[1] == "chart"} == set(grid["variants"])
    assert {r[2] for r in parts["baselines"]} == set(grid["baselines"])
    assert {r[4] for r in runs} == {str(s) for s in grid["seeds"] + grid["ablation_seeds"]}

    eval_keys = Counter(k for j in evals for k in _eval_keys(j))
    assert max(eval_keys.values()) == 1  # each result written by one job
    assert max(Counter(_eval_keys(j)[0][:-1] for j in evals).values()) == 1  # one job per checkpoint
    expected_evals = _expected_evals(config)
    assert expected_evals <= set(eval_keys), sorted(expected_evals - set(eval_keys))[:10]
    # beyond what the report reads: a math run is scored on every math benchmark (the ablation runs on those
    # Table 3 leaves out), nothing else
    extra = set(eval_keys) - expected_evals
    assert all(k[1] == "math" and k[-1] in config["math_benchmarks"] for k in extra), sorted(extra)[:10]
    checkpoints = {k[:-1] for k in eval_keys}
    assert checkpoints == {(m, "base") for m in models} | set(runs)  # every checkpoint is evaluated
    assert {k[-1] for k in eval_keys} == set(config["math_benchmarks"] + config["chart_benchmarks"]
                                             + config["ablation_benchmarks"])

    for target in _report_rules(repo_root, config):  # every artefact once, and nothing else of the report twice
        assert counts[f"make_{target}"] == 1, target
    assert {"make_figure5", "make_figure7", "make_selector"} <= set(counts)
    assert counts["all"] == 1
    assert not any("tiny" in o for j in jobs for o in j.outputs)  # the paper grid alone, not merged with the default
    assert all(kawhi_settings(config, v).enabled for v in grid["ablation_variants"] + grid["skip_ratio_variants"]
               + grid["selector_variants"])


def test_paper_recipe_and_chart_data_reach_the_train_jobs(repo_root, paper_jobs):
    """Issue 13: on config/paper.yaml the chart runs train on ChartQA and every train job gets the paper's recipe."""
    config, jobs = load_config(repo_root / "config" / "paper.yaml"), paper_jobs
    _, train, _ = _classify(jobs)
    assert train and all(j.shell for j in train)

    # the chart runs read the chart training set, which the prepare job fetches from ChartQA's train split
    prepare = {j.wildcards["trainset"]: j for j in jobs if j.rule == "prepare_train_data"}
    assert set(prepare) == {"math", "chart"}
    chart_prep = prepare["chart"]
    assert _shell_option(chart_prep, "--name") == "chartqa"
    assert _shell_option(chart_prep, "--source") == "HuggingFaceM4/ChartQA"
    assert _shell_option(chart_prep, "--split") == "train"
    assert _shell_option(chart_prep, "--limit") == str(config["chart_train_data"]["limit"])
    assert _shell_option(prepare["math"], "--source") == config["train_data"]["source"] != "HuggingFaceM4/ChartQA"
    chart_runs = [j for j in train if j.wildcards["trainset"] == "chart"]
    assert len(chart_runs) == 2 * len(config["grid"]["seeds"])
    for job in chart_runs:
        assert chart_prep.outputs[0] in job.inputs, job.inputs
        assert _shell_option(job, "--data") == chart_prep.outputs[0]
        assert _settings(job)["trainset"] == "chart"
    for job in train:
        if job.wildcards["trainset"] == "math":
            assert chart_prep.outputs[0] not in job.inputs, job.wildcards
            assert _settings(job)["trainset"] == "math"

    # the paper's recipe (PAPER.md, Setup) in every train job's --settings
    kl = {"grpo": 0.01, "gspo": 0.01, "dapo": 0.001}
    seen = set()
    for job in train:
        settings, algo = _settings(job), job.wildcards["algo"]
        training = settings["training"]
        assert settings["variant"] == job.wildcards["variant"] and settings["seed"] == int(job.wildcards["seed"])
        assert training["num_generations"] == 5, job.wildcards
        assert training["learning_rate"] == 1e-6, job.wildcards
        assert training["max_prompt_length"] == 1024, job.wildcards
        if algo in kl:
            seen.add(algo)
            assert settings["algorithm"]["beta"] == kl[algo], job.wildcards
            assert training["max_completion_length"] == (1024 if algo == "dapo" else 2048), job.wildcards
    assert seen == set(kl)


def test_named_target_table1_lists_only_what_table1_needs(repo_root):
    config = load_config(repo_root / "config" / "config.yaml")
    jobs = snakemake_dry_run(repo_root, "--forceall", "table1")
    rules = {j.rule for j in jobs}
    assert "make_table1" in rules and "table1" in rules
    others = {f"make_{t}" for t in _report_rules(repo_root, config)} - {"make_table1"}
    assert others and not rules & (others | {"all"})
    _, train, evals = _classify(jobs)
    runs = Counter(_run_key(j) for j in train)
    assert max(runs.values()) == 1
    parts = _expected_runs(config)
    assert set(runs) == parts["main"] | parts["baselines"]  # Table 1: main runs and fine-grained baselines
    assert {r[4] for r in runs} == {str(s) for s in config["grid"]["seeds"]}
    eval_keys = Counter(k for j in evals for k in _eval_keys(j))
    assert max(eval_keys.values()) == 1
    benches, first = config["math_benchmarks"], _first_model(config)
    # the first model's base job also scores the chart benchmarks (Figure 4's base row): one job per checkpoint
    assert set(eval_keys) == ({(m, "base", b) for m in config["models"] for b in benches}
                              | {(first, "base", b) for b in config["chart_benchmarks"]}
                              | {(*r, b) for r in runs for b in benches})


def test_e2e_reduced_config_schedules_every_rule_and_artefact(repo_root, tmp_path):
    """The slow end-to-end test's config (tests/test_e2e.py), dry-run only: every rule rule `all` can reach
    on synthetic data runs, every run of the grid once, and REPORT_ARTEFACTS is exactly what `all` builds."""
    import yaml

    from tests.test_e2e import REPORT_ARTEFACTS, expected_runs, reduced_config

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(reduced_config(repo_root)))
    config = load_config(tmp_path / "config.yaml")  # with the schema's defaults
    jobs = snakemake_dry_run(repo_root, "-s", str(repo_root / "Snakefile"), "--directory", str(tmp_path),
                             "--configfile", str(tmp_path / "config.yaml"))
    counts = Counter(j.rule for j in jobs)
    print("\nreduced e2e config dry run, jobs per rule:", dict(sorted(counts.items())), "total", sum(counts.values()))

    defined = set()
    for smk in [repo_root / "Snakefile", *sorted((repo_root / "rules").glob("*.smk"))]:
        defined |= set(re.findall(r"^rule (\w+):", smk.read_text(), re.M))
    defined |= _target_rules(repo_root)  # the report stage's rules, generated in a loop (rules/report.smk)
    # the evaluation rules, generated per model and per training set (rules/eval.smk)
    defined |= {"evaluate_base_" + re.sub(r"\W", "_", m) for m in config["models"]}
    defined |= {"evaluate_math_run", "evaluate_chart_run"}
    named_targets = _report_rules(repo_root, config)  # `snakemake table1` etc.; all asks for their files
    hub_only = {"prepare_benchmark", "prepare_train_data", "key_steps"}  # synthetic suites need none of them
    published = {"published_heads"}  # heads.source: published only
    assert config["heads"].get("source", "sweep") == "sweep"
    assert set(counts) == defined - named_targets - hub_only - published

    _, train, evals = _classify(jobs)
    runs = Counter(_run_key(j) for j in train)
    assert max(runs.values()) == 1 and len(runs) == expected_runs(config)
    assert set(runs) == set().union(*_expected_runs(config).values())
    assert {r[4] for r in runs} == {"0"}
    eval_keys = Counter(k for j in evals for k in _eval_keys(j))
    assert eval_keys.most_common(1)[0][1] == 1
    assert _expected_evals(config) <= set(eval_keys)
    extra = set(eval_keys) - _expected_evals(config)  # a math run is scored on every math benchmark
    assert all(k[1] == "math" and k[-1] in config["math_benchmarks"] for k in extra), sorted(extra)[:10]

    artefact_rules = {f"make_{t}" for t in named_targets}
    built = {o.removeprefix("results/report/") for j in jobs if j.rule in artefact_rules for o in j.outputs}
    assert built == set(REPORT_ARTEFACTS)
    assert len(REPORT_ARTEFACTS) == len(set(REPORT_ARTEFACTS))
