# Paths of every artefact and the named input functions the rules use. No rule builds a path by
# string concatenation; they all come from here, so the results/ layout is defined once.
import json
import re

from kawhi.config import (
    algorithm_settings,
    model_settings,
    settings_json,
    train_settings,
)

RESULTS = "results"
LOGS = "logs"
SYNTHETIC_SUITES = ["shapes_count", "shapes_arith", "bars_lookup", "lines_compare", "mme_synth"]


wildcard_constraints:
    model="|".join(re.escape(m) for m in config["models"]),
    algo="grpo|dapo|gspo",
    variant="[a-z][a-z0-9]*(-[a-z0-9]+)*",
    suite="|".join(SYNTHETIC_SUITES),
    split="train|test",


# ---- the grid --------------------------------------------------------------------------------------


def model_list():
    return list(config["models"])


def first_model():
    return model_list()[0]


def main_runs():
    """(model, algo, variant) of Table 1: every model x algorithm x {baseline, kawhi}."""
    return [
        (m, a, v)
        for m in model_list()
        for a in config["grid"]["algorithms"]
        for v in config["grid"]["variants"]
    ]


def ablation_runs():
    """(model, algo, variant) of Table 2: the first model, the ablation algorithm, each ablation."""
    algo = config["grid"]["ablation_algorithm"]
    return [(first_model(), algo, v) for v in config["grid"]["ablation_variants"]]


def all_runs():
    runs = main_runs() + ablation_runs()
    return list(dict.fromkeys(runs))


def is_synthetic(name):
    return name in SYNTHETIC_SUITES


# ---- paths -----------------------------------------------------------------------------------------


def base_model_dir(model):
    """The model as built (tiny) or fetched (hub id / local path)."""
    return f"{RESULTS}/models/{model}/base"


def sft_model_dir(model):
    return f"{RESULTS}/models/{model}/sft"


def policy_dir(model):
    """The starting policy of RL and the 'base model' row of Table 1: warm-started when SFT is on."""
    if model_settings(config, model)["sft"] and config["sft"]["enabled"]:
        return sft_model_dir(model)
    return base_model_dir(model)


def data_file(name, split="test"):
    """A synthetic suite or a prepared benchmark, as local parquet."""
    return f"{RESULTS}/data/{name}/{split}.parquet"


def heads_json(model):
    return f"{RESULTS}/heads/{model}/critical_heads.json"


def heads_dir(model):
    """Head identification's outputs: critical_heads.json, ablation.csv, figure3.png/.pdf."""
    return f"{RESULTS}/heads/{model}"


def heads_figure(model, ext):
    """The per-model Figure 3 panel (ext: png or pdf); the report draws the combined figure."""
    return f"{heads_dir(model)}/figure3.{ext}"


def run_dir(model, algo, variant):
    return f"{RESULTS}/train/{model}/{algo}/{variant}"


def run_done(model, algo, variant):
    return f"{run_dir(model, algo, variant)}/done.json"


def run_model_dir(model, algo, variant):
    return f"{run_dir(model, algo, variant)}/final"


def eval_base_json(model, bench):
    return f"{RESULTS}/eval/{model}/base/{bench}.json"


def eval_run_json(model, algo, variant, bench):
    return f"{RESULTS}/eval/{model}/{algo}/{variant}/{bench}.json"


def eval_benchmarks():
    names = config["math_benchmarks"] + config["chart_benchmarks"] + config["ablation_benchmarks"]
    return list(dict.fromkeys(names))


def train_data_files():
    if config["train_data"].get("source"):
        return [data_file("rl_train", "train")]
    return [data_file(s, "train") for s in config["train_data"]["suites"]]


# ---- named input functions (take wildcards) --------------------------------------------------------


def get_base_model(wildcards):
    return base_model_dir(wildcards.model)


def get_policy(wildcards):
    return policy_dir(wildcards.model)


def get_sft_data(wildcards):
    return [data_file(s, "train") for s in config["sft"]["suites"]]


def get_sft_test_data(wildcards):
    """Held-out test splits of the SFT suites: the warm-start's accuracy table in sft.json."""
    return [data_file(s, "test") for s in config["sft"]["suites"]]


def get_sft_settings(wildcards):
    from kawhi.config import sft_settings

    return settings_json(sft_settings(config, wildcards.model))


def get_heads_bench(wildcards):
    return data_file(config["heads_benchmark"], "test")


def get_heads_json(wildcards):
    return heads_json(wildcards.model)


def get_heads_dir(wildcards):
    return heads_dir(wildcards.model)


def get_heads_settings(wildcards):
    from kawhi.config import heads_settings

    return settings_json(heads_settings(config, wildcards.model))


def get_train_data(wildcards):
    return train_data_files()


def get_train_settings(wildcards):
    return settings_json(train_settings(config, wildcards.model, wildcards.algo, wildcards.variant))


def get_model_settings(wildcards):
    return settings_json(model_settings(config, wildcards.model))


def get_run_model(wildcards):
    return run_done(wildcards.model, wildcards.algo, wildcards.variant)


def get_bench_data(wildcards):
    return data_file(wildcards.bench, "test")


def get_eval_settings(wildcards):
    settings = {k: v for k, v in config["eval"].items() if k != "resources"}
    settings["benchmark"] = wildcards.bench
    settings["seed"] = config["seed"]
    return settings_json(settings)


def get_run_model_dir(wildcards):
    """The trained run's final model directory (its done.json, from get_run_model, is the rule input)."""
    return run_model_dir(wildcards.model, wildcards.algo, wildcards.variant)


def get_run_dir(wildcards):
    """A training run's directory. Only its done.json is a declared output, so Snakemake never deletes
    the checkpoints/ beside it after a crash, and the rerun resumes instead of restarting."""
    return run_dir(wildcards.model, wildcards.algo, wildcards.variant)


def eval_bench_pattern():
    """Wildcard constraint for `bench` in the eval rules: exactly the configured benchmark names."""
    import re

    return "|".join(re.escape(b) for b in eval_benchmarks())


# ---- report: what each table and figure reads (rules/report.smk) ---------------------------------
# Each report command gets a manifest (JSON) naming its input files and what each one is; the same
# entries give the rule's input list, so the manifest and the DAG cannot disagree.
from kawhi.config import kawhi_settings
from kawhi.report.manifest import BASE_ROW, EvalEntry, HeadsEntry, RunEntry, manifest_json


def report_file(name):
    """A table or figure of the paper, e.g. report_file("table1.csv")."""
    return f"{RESULTS}/report/{name}"


def heads_ablation_csv(model):
    return f"{RESULTS}/heads/{model}/ablation.csv"


def uses_kawhi(variant):
    return kawhi_settings(config, variant).enabled


def eval_entry(model, algo, variant, bench):
    """One eval result as the report reads it; algo BASE_ROW is the base model (policy_dir)."""
    if algo == BASE_ROW:
        return EvalEntry(model, BASE_ROW, "", bench, eval_base_json(model, bench), False)
    path = eval_run_json(model, algo, variant, bench)
    return EvalEntry(model, algo, variant, bench, path, uses_kawhi(variant))


def table1_entries():
    """Per model: the base model, then every main run, on the math benchmarks."""
    benches = config["math_benchmarks"]
    entries = []
    for model in model_list():
        entries += [eval_entry(model, BASE_ROW, "", b) for b in benches]
        runs = [(a, v) for (m, a, v) in main_runs() if m == model]
        entries += [eval_entry(model, a, v, b) for (a, v) in runs for b in benches]
    return entries


def table2_entries():
    """The first model, the ablation algorithm: without KAWHI, with KAWHI, then each ablation."""
    algo = config["grid"]["ablation_algorithm"]
    variants = dict.fromkeys(config["grid"]["variants"] + config["grid"]["ablation_variants"])
    return [eval_entry(first_model(), algo, v, b) for v in variants for b in config["ablation_benchmarks"]]


def figure4_algorithm():
    """GRPO, as in the paper; the first configured algorithm if GRPO is not in the grid."""
    algos = config["grid"]["algorithms"]
    return "grpo" if "grpo" in algos else algos[0]


def figure4_entries():
    algo = figure4_algorithm()
    return [eval_entry(first_model(), algo, v, b) for v in config["grid"]["variants"]
            for b in config["chart_benchmarks"]]


def figure1_entries():
    benches = config["report"].get("figure1_benchmarks") or config["math_benchmarks"]
    return [eval_entry(m, BASE_ROW, "", b) for m in model_list() for b in benches]


def summary_entries():
    """Every main-grid KAWHI comparison: Table 1's runs plus Figure 4's chart results."""
    entries = [e for e in table1_entries() if e.algo != BASE_ROW] + figure4_entries()
    return list(dict.fromkeys(entries))


def heads_entries():
    return [HeadsEntry(m, heads_ablation_csv(m), heads_json(m)) for m in model_list()]


def curves_runs():
    return [RunEntry(m, a, v, run_done(m, a, v), uses_kawhi(v)) for (m, a, v) in main_runs()]


def gallery_runs():
    """The first model's KAWHI run(s) of the Figure 4 algorithm: where the gallery rollouts come from."""
    algo = figure4_algorithm()
    return [RunEntry(first_model(), algo, v, run_done(first_model(), algo, v), True)
            for v in config["grid"]["variants"] if uses_kawhi(v)]


def get_table1_inputs(wildcards):
    return [e.path for e in table1_entries()]


def get_table1_manifest(wildcards):
    return manifest_json(table1_entries())


def get_table2_inputs(wildcards):
    return [e.path for e in table2_entries()]


def get_table2_manifest(wildcards):
    return manifest_json(table2_entries())


def get_figure1_inputs(wildcards):
    return {"evals": [e.path for e in figure1_entries()],
            "data": [data_file(b, "test") for b in dict.fromkeys(e.benchmark for e in figure1_entries())]}


def get_figure1_manifest(wildcards):
    return manifest_json(figure1_entries())


def get_figure1_data(wildcards):
    """BENCH=PARQUET pairs: where Figure 1's example cases find their images."""
    return [f"{b}={data_file(b, 'test')}" for b in dict.fromkeys(e.benchmark for e in figure1_entries())]


def get_eval_judge(wildcards):
    return settings_json(config["eval"].get("judge") or {})


def get_figure3_inputs(wildcards):
    return [f for e in heads_entries() for f in (e.heads_json, e.ablation_csv)]


def get_figure3_manifest(wildcards):
    return manifest_json(heads_entries())


def get_figure4_inputs(wildcards):
    return [e.path for e in figure4_entries()]


def get_figure4_manifest(wildcards):
    return manifest_json(figure4_entries())


def get_curves_inputs(wildcards):
    return [r.done for r in curves_runs()]


def get_curves_manifest(wildcards):
    return manifest_json(curves_runs())


def get_gallery_inputs(wildcards):
    return [r.done for r in gallery_runs()]


def get_gallery_manifest(wildcards):
    return manifest_json(gallery_runs())


def get_summary_inputs(wildcards):
    return [e.path for e in summary_entries()]


def get_summary_manifest(wildcards):
    return manifest_json(summary_entries())


# ---- what `snakemake` (rule all) builds ------------------------------------------------------------


def all_targets():
    """Grows stage by stage; the report stage adds the tables and figures."""
    targets = [policy_dir(m) for m in model_list()]
    targets += REPORT_TARGETS if "REPORT_TARGETS" in globals() else []
    return targets
