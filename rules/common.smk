# The Snakemake side of the grid: the wildcards, the results/ path patterns and the rules' named input
# functions. What the grid holds (its runs, what each table and figure reads, the manifests) is plain Python
# in kawhi.report.grid (workflow/kawhi/report/grid.py), unit-tested by tests/test_report_grid.py.
import re

from kawhi.config import (TRAINSETS, eval_settings, heads_settings, model_settings, settings_json, sft_settings,
                          train_settings)
from kawhi.report import grid
# the path patterns: each rule's output is one of these strings
from kawhi.report.grid import BASE_MODEL, SFT_MODEL, HEADS_JSON, HEADS_ABLATION, HEADS_FIGURE_PNG, HEADS_FIGURE_PDF
from kawhi.report.grid import PUBLISHED_HEADS, RUN_DONE, EVAL_BASE, EVAL_BASE_SAMPLES, EVAL_RUN, EVAL_RUN_SAMPLES
from kawhi.report.grid import SYNTHETIC_SUITES, TRAIN_DATA, data_file, key_steps_data, prepared_train_data, report_file

# The one software environment of every rule (`--sdm conda`): envs/kawhi.yaml installs envs/paper.lock.txt.
KAWHI_ENV = "../envs/kawhi.yaml"  # relative to the rule file (rules/), as Snakemake resolves conda:


wildcard_constraints:
    model="|".join(re.escape(m) for m in config["models"]),
    algo="|".join(re.escape(a) for a in config["algorithms"]),
    variant="[a-z][a-z0-9]*(-[a-z0-9]+)*",
    suite="|".join(SYNTHETIC_SUITES),
    split="train|test",
    trainset="|".join(TRAINSETS),
    seed="[0-9]+",


def rule_suffix(name):
    """A model or training-set name as part of a rule name (the rules generated per model in eval.smk)."""
    return re.sub(r"\W", "_", name)


def eval_outputs(pattern, benches):
    """An eval path pattern for each of ``benches``; the checkpoint's wildcards stay open."""
    return expand(pattern, bench=benches, allow_missing=True)


# ---- named input functions (take wildcards) --------------------------------------------------------


def get_base_model(wildcards):
    return BASE_MODEL.format(model=wildcards.model)


def get_policy(wildcards):
    """The starting policy of RL: the SFT warm-start when it is on for the model, else the base model."""
    return grid.policy_dir(config, wildcards.model)


def get_model_settings(wildcards):
    return settings_json(model_settings(config, wildcards.model))


def get_sft_data(wildcards):
    return [data_file(s, "train") for s in config["sft"]["suites"]]


def get_sft_test_data(wildcards):
    """Held-out test splits of the SFT suites: the warm-start's accuracy table in sft.json."""
    return [data_file(s, "test") for s in config["sft"]["suites"]]


def get_sft_settings(wildcards):
    return settings_json(sft_settings(config, wildcards.model))


def get_heads_bench(wildcards):
    return data_file(config["heads_benchmark"], "test")


def get_heads_dir(wildcards):
    return grid.HEADS_DIR.format(model=wildcards.model)


def get_heads_settings(wildcards):
    return settings_json(heads_settings(config, wildcards.model))


def get_published_heads(wildcards):
    return " ".join(str(h) for h in config["heads"]["published"][wildcards.model])


def get_heads_json(wildcards):
    """The critical heads the KAWHI runs read: the sweep's, or the published list (heads.source)."""
    return grid.training_heads_json(config, wildcards.model)


def get_train_data(wildcards):
    return grid.train_data_files(config, wildcards.trainset, wildcards.algo)


def get_train_settings(wildcards):
    w = wildcards
    return settings_json(train_settings(config, w.model, w.algo, w.variant, int(w.seed), w.trainset))


def _run(wildcards):
    """The run's wildcards (model, trainset, algo, variant, seed) by name, for the path patterns."""
    return dict(wildcards.items())


def get_run_dir(wildcards):
    """A training run's directory. Only its done.json is a declared output, so Snakemake never deletes
    the checkpoints/ beside it after a crash, and the rerun resumes instead of restarting."""
    return grid.RUN_DIR.format(**_run(wildcards))


def get_run_model(wildcards):
    """The trained run's done.json: the eval rule's input (the model itself is get_run_model_dir)."""
    return RUN_DONE.format(**_run(wildcards))


def get_run_model_dir(wildcards):
    return grid.RUN_MODEL.format(**_run(wildcards))


def get_judge(wildcards):
    """The configured LLM judge (eval.judge) as JSON; {} when none is configured."""
    return settings_json(config["eval"].get("judge") or {})


# ---- what `snakemake` (rule all) builds ------------------------------------------------------------


def all_targets():
    """Every model's starting policy; the report stage (rules/report.smk) adds the tables and figures."""
    targets = [grid.policy_dir(config, m) for m in grid.models(config)]
    targets += REPORT_TARGETS if "REPORT_TARGETS" in globals() else []
    return targets
