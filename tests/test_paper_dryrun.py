"""Dry runs of the real Snakefile: the paper grid's whole DAG, offline, and a named target's sub-DAG."""

from __future__ import annotations

from collections import Counter

from kawhi.config import kawhi_settings, load_config
from tests.report_fixtures import snakemake_dry_run


def _classify(jobs):
    """Heads, training and eval jobs, by what they write (rule names belong to their stages)."""
    heads = [j for j in jobs if any(o.endswith("/critical_heads.json") for o in j.outputs)]
    train = [j for j in jobs if any(o.startswith("results/train/") and o.endswith("/done.json") for o in j.outputs)]
    evals = [j for j in jobs if any(o.startswith("results/eval/") and o.endswith(".json") for o in j.outputs)]
    return heads, train, evals


def _eval_key(job):
    out = next(o for o in job.outputs if o.startswith("results/eval/") and o.endswith(".json"))
    parts = out.removeprefix("results/eval/").removesuffix(".json").split("/")
    return tuple(parts)  # (model, "base", bench) or (model, algo, variant, bench)


def _expected_evals(config):
    """Every (checkpoint, benchmark) the tables, figures and summary read."""
    models = list(config["models"])
    first, grid = models[0], config["grid"]
    fig4_algo = "grpo" if "grpo" in grid["algorithms"] else grid["algorithms"][0]
    figure1 = config["report"].get("figure1_benchmarks") or config["math_benchmarks"]
    keys = set()
    for m in models:
        keys |= {(m, "base", b) for b in config["math_benchmarks"] + figure1}
        keys |= {(m, a, v, b) for a in grid["algorithms"] for v in grid["variants"] for b in config["math_benchmarks"]}
    keys |= {(first, fig4_algo, v, b) for v in grid["variants"] for b in config["chart_benchmarks"]}
    keys |= {(first, grid["ablation_algorithm"], v, b) for v in grid["variants"] + grid["ablation_variants"]
             for b in config["ablation_benchmarks"]}
    return keys


def test_paper_dry_run_lists_the_whole_grid(repo_root):
    config = load_config(repo_root / "config" / "paper.yaml")
    jobs = snakemake_dry_run(repo_root, "--forceall", "--configfile", "config/paper.yaml")
    counts = Counter(j.rule for j in jobs)
    print("\npaper grid dry run, jobs per rule:", dict(sorted(counts.items())), "total", sum(counts.values()))

    heads, train, evals = _classify(jobs)
    models = list(config["models"])
    assert models == ["qwen25vl-7b", "qwen3vl-4b"]
    assert Counter(j.wildcards["model"] for j in heads) == {m: 1 for m in models}

    runs = Counter((j.wildcards["model"], j.wildcards["algo"], j.wildcards["variant"]) for j in train)
    assert max(runs.values()) == 1
    for m in models:
        main = {(m, a, v) for a in ("grpo", "dapo", "gspo") for v in ("baseline", "kawhi")}
        mine = {r for r in runs if r[0] == m}
        ablations = {(m, "grpo", v) for v in config["grid"]["ablation_variants"]} if m == models[0] else set()
        assert mine == main | ablations, m
    assert len(runs) == 2 * 6 + len(config["grid"]["ablation_variants"])  # 8: one per row of Table 3

    eval_keys = Counter(_eval_key(j) for j in evals)
    assert max(eval_keys.values()) == 1  # one job per checkpoint and benchmark
    assert set(eval_keys) == _expected_evals(config)
    checkpoints = {k[:-1] for k in eval_keys}
    assert checkpoints == {(m, "base") for m in models} | set(runs)  # every checkpoint is evaluated

    for rule in ("make_table1", "make_table2", "make_figure1", "make_figure3", "make_figure4", "make_curves",
                 "make_gallery", "make_summary"):
        assert counts[rule] == 1, rule
    assert not any("tiny" in o for j in jobs for o in j.outputs)  # the paper grid alone, not merged with the default
    assert all(kawhi_settings(config, v).enabled for v in config["grid"]["ablation_variants"])


def test_named_target_table1_lists_only_what_table1_needs(repo_root):
    config = load_config(repo_root / "config" / "config.yaml")
    jobs = snakemake_dry_run(repo_root, "--forceall", "table1")
    rules = {j.rule for j in jobs}
    assert "make_table1" in rules and "table1" in rules
    assert not rules & {"make_table2", "make_figure1", "make_figure3", "make_figure4", "make_curves",
                        "make_gallery", "make_summary", "all"}
    _, train, evals = _classify(jobs)
    runs = {(j.wildcards["model"], j.wildcards["algo"], j.wildcards["variant"]) for j in train}
    grid = config["grid"]
    assert runs == {(m, a, v) for m in config["models"] for a in grid["algorithms"] for v in grid["variants"]}
    benches = {_eval_key(j)[-1] for j in evals}
    assert benches == set(config["math_benchmarks"])
    assert len(evals) == len(config["models"]) * (1 + len(runs) // len(config["models"])) * len(benches)
