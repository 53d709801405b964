# Paths of every artefact and the named input functions the rules use. No rule builds a path by
# string concatenation; they all come from here, so the results/ layout is defined once.
import json

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
    model="|".join(config["models"]),
    algo="grpo|dapo|gspo",
    variant="[a-z]+(-[a-z]+)?",
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


def get_heads_bench(wildcards):
    return data_file(config["heads_benchmark"], "test")


def get_heads_json(wildcards):
    return heads_json(wildcards.model)


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


# ---- what `snakemake` (rule all) builds ------------------------------------------------------------


def all_targets():
    """Grows stage by stage; the report stage adds the tables and figures."""
    targets = [policy_dir(m) for m in model_list()]
    targets += REPORT_TARGETS if "REPORT_TARGETS" in globals() else []
    return targets
