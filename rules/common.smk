# Paths of every artefact and the named input functions the rules use. No rule builds a path by
# string concatenation; they all come from here, so the results/ layout is defined once.
import json
import re

from kawhi.config import (
    TRAINSETS,
    algorithm_settings,
    eval_settings,
    model_settings,
    settings_json,
    train_settings,
)

RESULTS = "results"
LOGS = "logs"
# The one software environment of every rule (`--sdm conda`): envs/kawhi.yaml installs envs/paper.lock.txt.
KAWHI_ENV = "../envs/kawhi.yaml"  # relative to the rule file (rules/), as Snakemake resolves conda:
SYNTHETIC_SUITES = ["shapes_count", "shapes_arith", "bars_lookup", "lines_compare", "mme_synth"]


wildcard_constraints:
    model="|".join(re.escape(m) for m in config["models"]),
    algo="|".join(re.escape(a) for a in config["algorithms"]),
    variant="[a-z][a-z0-9]*(-[a-z0-9]+)*",
    suite="|".join(SYNTHETIC_SUITES),
    split="train|test",
    trainset="|".join(TRAINSETS),
    seed="[0-9]+",


# ---- the grid --------------------------------------------------------------------------------------
# A run is (model, trainset, algo, variant, seed): trainset "math" reads train_data (Table 1, the
# ablations, the sweeps), "chart" reads chart_train_data (the chart experiment of figure4).


def model_list():
    return list(config["models"])


def first_model():
    return model_list()[0]


def figure4_algorithm():
    """GRPO, as in the paper (charts, Figure 1); the first configured algorithm if GRPO is not in the grid."""
    algos = config["grid"]["algorithms"]
    return "grpo" if "grpo" in algos else algos[0]


def sweep_algorithm():
    """The algorithm of the first model's ablations and sweeps (GRPO in the paper)."""
    return config["grid"]["ablation_algorithm"]


def main_runs():
    """Table 1: every model x algorithm x {baseline, kawhi} x grid.seeds, trained on train_data."""
    grid = config["grid"]
    return [(m, "math", a, v, s) for m in model_list() for a in grid["algorithms"] for v in grid["variants"]
            for s in grid["seeds"]]


def chart_runs():
    """The chart experiment: the first model, GRPO x {baseline, kawhi} x grid.seeds, trained on chart_train_data."""
    grid = config["grid"]
    return [(first_model(), "chart", figure4_algorithm(), v, s) for v in grid["variants"] for s in grid["seeds"]]


def sweep_runs(variants):
    """The first model, the ablation algorithm, each variant x grid.ablation_seeds, trained on train_data."""
    return [(first_model(), "math", sweep_algorithm(), v, s) for v in variants
            for s in config["grid"]["ablation_seeds"]]


def baseline_runs():
    """Table 1's fine-grained reward baselines (grid.baselines): the first model, without KAWHI, on train_data,
    every seed of grid.seeds, as the paper trains them."""
    grid = config["grid"]
    return [(first_model(), "math", b, plain_variant(), s) for b in grid["baselines"] for s in grid["seeds"]]


def all_runs():
    grid = config["grid"]
    runs = main_runs() + baseline_runs() + chart_runs() + sweep_runs(grid["ablation_variants"] + grid["skip_ratio_variants"]
                                                   + grid["selector_variants"])
    return list(dict.fromkeys(runs))


def run_seeds(model, trainset, algo, variant):
    """Every seed a run is trained with: a run in Table 1 and in a sweep keeps the seeds of both lists."""
    return sorted({r[4] for r in all_runs() if r[:4] == (model, trainset, algo, variant)})


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


def run_dir(model, trainset, algo, variant, seed):
    return f"{RESULTS}/train/{model}/{trainset}/{algo}/{variant}/seed-{seed}"


def run_done(model, trainset, algo, variant, seed):
    return f"{run_dir(model, trainset, algo, variant, seed)}/done.json"


def run_model_dir(model, trainset, algo, variant, seed):
    return f"{run_dir(model, trainset, algo, variant, seed)}/final"


def eval_base_json(model, bench):
    return f"{RESULTS}/eval/{model}/base/{bench}.json"


def eval_run_json(model, trainset, algo, variant, seed, bench):
    return f"{RESULTS}/eval/{model}/{trainset}/{algo}/{variant}/seed-{seed}/{bench}.json"


def eval_benchmarks():
    names = config["math_benchmarks"] + config["chart_benchmarks"] + config["ablation_benchmarks"]
    return list(dict.fromkeys(names))


# trainset -> (its config block, the `kawhi prepare-benchmark` layout its source is read with)
TRAIN_DATA = {"math": ("train_data", "rl_train"), "chart": ("chart_train_data", "chartqa")}


def prepared_train_data(trainset):
    return data_file(f"{trainset}_train", "train")


def needs_key_steps(algo):
    """Step-GRPO reads each problem's key steps from a dataset column (kawhi.data.key_steps)."""
    return config["algorithms"][algo].get("step_grpo") is not None


def key_steps_data(trainset):
    """A prepared hub training set with the judge's key steps added (rule key_steps, rules/baselines.smk)."""
    return data_file(f"{trainset}_train", "train.keysteps")


def train_data_files(trainset, algo=None):
    """The run's training parquet(s); Step-GRPO on hub data reads the copy with key steps (synthetic suites
    carry theirs)."""
    block = config[TRAIN_DATA[trainset][0]]
    if block.get("source"):
        return [key_steps_data(trainset) if algo is not None and needs_key_steps(algo)
                else prepared_train_data(trainset)]
    return [data_file(s, "train") for s in block["suites"]]


def published_heads_json(model):
    return f"{RESULTS}/heads/{model}/published_heads.json"


def training_heads_json(model):
    """The critical heads the KAWHI runs read: the sweep's, or the published list (heads.source)."""
    if config["heads"]["source"] == "published":
        return published_heads_json(model)
    return heads_json(model)


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
    return training_heads_json(wildcards.model)


def get_published_heads(wildcards):
    return " ".join(str(h) for h in config["heads"]["published"][wildcards.model])


def get_heads_dir(wildcards):
    return heads_dir(wildcards.model)


def get_heads_settings(wildcards):
    from kawhi.config import heads_settings

    return settings_json(heads_settings(config, wildcards.model))


def get_train_data(wildcards):
    return train_data_files(wildcards.trainset, wildcards.algo)


def get_train_settings(wildcards):
    return settings_json(train_settings(config, wildcards.model, wildcards.algo, wildcards.variant,
                                        int(wildcards.seed), wildcards.trainset))


def get_model_settings(wildcards):
    return settings_json(model_settings(config, wildcards.model))


def _run(wildcards):
    return (wildcards.model, wildcards.trainset, wildcards.algo, wildcards.variant, wildcards.seed)


def get_run_model(wildcards):
    return run_done(*_run(wildcards))


def get_bench_data(wildcards):
    return data_file(wildcards.bench, "test")


def get_eval_settings(wildcards):
    return settings_json(eval_settings(config, wildcards.bench))


def get_base_eval_settings(wildcards):
    return settings_json(eval_settings(config, wildcards.bench, base=True))


def get_run_model_dir(wildcards):
    """The trained run's final model directory (its done.json, from get_run_model, is the rule input)."""
    return run_model_dir(*_run(wildcards))


def get_run_dir(wildcards):
    """A training run's directory. Only its done.json is a declared output, so Snakemake never deletes
    the checkpoints/ beside it after a crash, and the rerun resumes instead of restarting."""
    return run_dir(*_run(wildcards))


def eval_bench_pattern():
    """Wildcard constraint for `bench` in the eval rules: exactly the configured benchmark names."""
    import re

    return "|".join(re.escape(b) for b in eval_benchmarks())


# ---- report: what each table and figure reads (rules/report.smk) ---------------------------------
# Each report command gets a manifest (JSON) naming its input files and what each one is; the same
# entries give the rule's input list, so the manifest and the DAG cannot disagree.
from kawhi.config import kawhi_settings, variant_changes
from kawhi.report.manifest import BASE_ROW, EvalEntry, HeadsEntry, RunEntry, manifest_json
from kawhi.report.published import published_score, published_step_time


def report_file(name):
    """A table or figure of the paper, e.g. report_file("table1.csv")."""
    return f"{RESULTS}/report/{name}"


def heads_ablation_csv(model):
    return f"{RESULTS}/heads/{model}/ablation.csv"


def uses_kawhi(variant):
    return kawhi_settings(config, variant).enabled


def plain_variant():
    """The grid's variant without KAWHI (the algorithm alone)."""
    return next(v for v in config["grid"]["variants"] if not uses_kawhi(v))


def full_variant():
    """The grid's variant with full KAWHI (no change against the kawhi block): the sweeps' reference."""
    return next(v for v in config["grid"]["variants"] if uses_kawhi(v) and not variant_changes(config, v))


def eval_entry(model, trainset, algo, variant, seed, bench):
    """One eval result as the report reads it; algo BASE_ROW is the base model (policy_dir)."""
    source = config["models"][model]["source"]
    if algo == BASE_ROW:
        return EvalEntry(model, BASE_ROW, "", bench, eval_base_json(model, bench), False,
                         published=published_score(source, "", BASE_ROW, False, "", bench))
    kawhi, detail = uses_kawhi(variant), variant_changes(config, variant)
    return EvalEntry(model, algo, variant, bench, eval_run_json(model, trainset, algo, variant, seed, bench),
                     kawhi, trainset, seed, detail, published_score(source, trainset, algo, kawhi, detail, bench))


def base_entries(model, benches):
    return [eval_entry(model, "", BASE_ROW, "", None, b) for b in benches]


def row_entries(model, trainset, algo, variant, benches):
    """One table row: the eval results of every seed of the run."""
    return [eval_entry(model, trainset, algo, variant, s, b) for s in run_seeds(model, trainset, algo, variant)
            for b in benches]


def table1_entries():
    """Per model: the base model, then every main run, on the math benchmarks."""
    benches = config["math_benchmarks"]
    entries = []
    for model in model_list():
        entries += base_entries(model, benches)
        for (a, v) in dict.fromkeys((a, v) for (m, _, a, v, _) in main_runs() + baseline_runs() if m == model):
            entries += row_entries(model, "math", a, v, benches)
    return entries


def figure4_entries():
    """The chart experiment (radar and chart table): the first model's base model, then its chart runs."""
    benches = config["chart_benchmarks"]
    entries = base_entries(first_model(), benches)
    for v in config["grid"]["variants"]:
        entries += row_entries(first_model(), "chart", figure4_algorithm(), v, benches)
    return entries


def sweep_entries(variants, benches):
    """The first model's sweep rows (ablation algorithm, math runs) on ``benches``."""
    rows = dict.fromkeys(variants)
    return [e for v in rows for e in row_entries(first_model(), "math", sweep_algorithm(), v, benches)]


def table2_entries():
    """The ablation algorithm without KAWHI, with full KAWHI, then each ablation."""
    grid = config["grid"]
    return sweep_entries(grid["variants"] + grid["ablation_variants"], config["ablation_benchmarks"])


def figure7_entries():
    grid = config["grid"]
    return sweep_entries([plain_variant(), full_variant()] + grid["skip_ratio_variants"],
                         config["ablation_benchmarks"])


def get_figure7_skip_ratios(wildcards):
    variants = [full_variant()] + config["grid"]["skip_ratio_variants"]
    return json.dumps({v: kawhi_settings(config, v).sguf.skip_ratio for v in variants}, sort_keys=True)


def selector_entries():
    grid = config["grid"]
    return sweep_entries([plain_variant(), full_variant()] + grid["selector_variants"], config["math_benchmarks"])


def figure1_entries():
    """The GRPO-trained model of each model (every seed), as the paper's Figure 1 classifies it."""
    benches = config["report"].get("figure1_benchmarks") or config["math_benchmarks"]
    return [e for m in model_list() for e in row_entries(m, "math", figure4_algorithm(), plain_variant(), benches)]


def summary_entries():
    """Every main-grid comparison: Table 1's rows plus the chart experiment's."""
    return list(dict.fromkeys(table1_entries() + figure4_entries()))


def heads_entries():
    published = config["heads"]["published"]
    return [HeadsEntry(m, heads_ablation_csv(m), heads_json(m), tuple(published.get(m, ())),
                       config["heads"]["source"]) for m in model_list()]


def run_entry(model, trainset, algo, variant, seed):
    kawhi, detail = uses_kawhi(variant), variant_changes(config, variant)
    step_time = published_step_time(config["models"][model]["source"], algo, kawhi, detail) \
        if trainset == "math" else None
    return RunEntry(model, algo, variant, run_done(model, trainset, algo, variant, seed), kawhi, trainset, seed,
                    detail, step_time)


def curves_runs():
    return [run_entry(*run) for run in main_runs() + chart_runs()]


def figure5_runs():
    """Table 1's runs: per model and algorithm, the step times without and with KAWHI."""
    return [run_entry(*run) for run in main_runs()]


def gallery_runs():
    """The first model's KAWHI math run(s) of the Figure 4 algorithm, first seed: the gallery's rollouts."""
    algo, seed = figure4_algorithm(), config["grid"]["seeds"][0]
    return [run_entry(first_model(), "math", algo, v, seed) for v in config["grid"]["variants"] if uses_kawhi(v)]


def _paths(entries):
    return [e.path for e in entries]


def get_table1_inputs(wildcards):
    return _paths(table1_entries())


def get_table1_manifest(wildcards):
    return manifest_json(table1_entries())


def get_table2_inputs(wildcards):
    return _paths(table2_entries())


def get_table2_manifest(wildcards):
    return manifest_json(table2_entries())


def get_figure1_inputs(wildcards):
    return {"evals": _paths(figure1_entries()),
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
    return _paths(figure4_entries())


def get_figure4_manifest(wildcards):
    return manifest_json(figure4_entries())


def get_figure5_inputs(wildcards):
    return [r.done for r in figure5_runs()]


def get_figure5_manifest(wildcards):
    return manifest_json(figure5_runs())


def get_figure7_inputs(wildcards):
    return _paths(figure7_entries())


def get_figure7_manifest(wildcards):
    return manifest_json(figure7_entries())


def get_selector_inputs(wildcards):
    return _paths(selector_entries())


def get_selector_manifest(wildcards):
    return manifest_json(selector_entries())


def get_reference_variant(wildcards):
    return full_variant()


def get_curves_inputs(wildcards):
    return [r.done for r in curves_runs()]


def get_curves_manifest(wildcards):
    return manifest_json(curves_runs())


def get_gallery_inputs(wildcards):
    return [r.done for r in gallery_runs()]


def get_gallery_manifest(wildcards):
    return manifest_json(gallery_runs())


def get_summary_inputs(wildcards):
    return _paths(summary_entries())


def get_summary_manifest(wildcards):
    return manifest_json(summary_entries())


# ---- what `snakemake` (rule all) builds ------------------------------------------------------------


def all_targets():
    """Grows stage by stage; the report stage adds the tables and figures."""
    targets = [policy_dir(m) for m in model_list()]
    targets += REPORT_TARGETS if "REPORT_TARGETS" in globals() else []
    return targets
