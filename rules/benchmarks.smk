# rules for stage: benchmark preparation (see rules/common.smk)
# A paper benchmark (hub id or local copy, per config benchmark_sources) -> results/data/{bench}/test.parquet.
# Synthetic suites land at the same place through rule make_data (rules/data.smk).
import shlex

REAL_BENCHMARKS = ["mathvista", "mathverse", "mathvision", "wemath", "chartqa", "chartqapro",
                   "charxiv_descriptive", "charxiv_reasoning", "chartmimic", "mme"]


def get_benchmark_source_args(wildcards):
    """--source/--split/--limit of one benchmark from config benchmark_sources, plus the bad-row policy."""
    source = config["benchmark_sources"].get(wildcards.bench, {})
    args = [f"--{key} {shlex.quote(str(source[key]))}" for key in ("source", "split", "limit") if key in source]
    if config["eval"]["skip_bad_rows"]:
        args.append("--skip-bad-rows")
    return " ".join(args)


rule prepare_benchmark:
    output:
        data_file("{bench}", "test"),
    params:
        args=get_benchmark_source_args,
    log:
        "logs/data/{bench}.prepare.log",
    wildcard_constraints:
        bench="|".join(REAL_BENCHMARKS),
    threads: 1
    conda:
        KAWHI_ENV
    shell:
        "kawhi prepare-benchmark --name {wildcards.bench} --out {output} {params.args} > {log} 2>&1"


def get_train_source_args(wildcards):
    """--name/--source/--split/--limit/--shuffle-seed of one RL training set (train_data or chart_train_data)."""
    block, layout = TRAIN_DATA[wildcards.trainset]
    train = config[block]
    args = [f"--name {layout}"]
    args += [f"--{key} {shlex.quote(str(train[key]))}" for key in ("source", "split", "limit") if key in train]
    if train["shuffle"]:
        args.append(f"--shuffle-seed {config['seed']}")
    if config["eval"]["skip_bad_rows"]:
        args.append("--skip-bad-rows")
    return " ".join(args)


rule prepare_train_data:
    output:
        prepared_train_data("{trainset}"),
    params:
        args=get_train_source_args,
    log:
        "logs/data/{trainset}_train.prepare.log",
    threads: 1
    conda:
        KAWHI_ENV
    shell:
        "kawhi prepare-benchmark --out {output} {params.args} > {log} 2>&1"
