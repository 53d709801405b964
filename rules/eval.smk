# rules for stage: eval (see rules/common.smk for paths and input functions)
# One job per checkpoint: `kawhi evaluate` loads the model and lm-eval once and runs every benchmark the
# checkpoint is scored on, writing each benchmark's result JSON plus its per-sample log beside it. A run is
# scored on its training set's benchmarks (kawhi.report.grid.run_benchmarks), the base policy of each model
# on what the report reads of it (grid.base_benchmarks). The rules are generated per training set and per
# model because their list of outputs differs; each job's log and benchmark file hold all its benchmarks.

for eval_model in grid.models(config):

    rule:
        name:
            f"evaluate_base_{rule_suffix(eval_model)}"
        input:
            model=get_policy,
            data=[data_file(b, "test") for b in grid.base_benchmarks(config, eval_model)],
        output:
            results=eval_outputs(EVAL_BASE, grid.base_benchmarks(config, eval_model)),
            samples=eval_outputs(EVAL_BASE_SAMPLES, grid.base_benchmarks(config, eval_model)),
        params:
            benchmarks=grid.base_benchmarks(config, eval_model),
            settings=settings_json(eval_settings(config, base=True)),
        wildcard_constraints:
            model=re.escape(eval_model),
        log:
            "logs/eval/{model}/base.log",
        benchmark:
            "results/benchmarks/eval/{model}/base.tsv"
        threads: config["eval"]["resources"]["threads"]
        resources:
            mem_mb=config["eval"]["resources"]["mem_mb"],
            runtime=config["eval"]["resources"]["runtime"],
            gpu=config["eval"]["resources"].get("gpu", 0),
        conda:
            KAWHI_ENV
        shell:
            "kawhi evaluate --model {input.model} --benchmark {params.benchmarks} --data {input.data}"
            " --out {output.results} --model-name {wildcards.model} --checkpoint base"
            " --settings {params.settings:q} > {log} 2>&1"


for eval_trainset in TRAINSETS:
    if not grid.run_benchmarks(config, eval_trainset):
        continue

    rule:
        name:
            f"evaluate_{eval_trainset}_run"
        input:
            done=get_run_model,
            data=[data_file(b, "test") for b in grid.run_benchmarks(config, eval_trainset)],
        output:
            results=eval_outputs(EVAL_RUN, grid.run_benchmarks(config, eval_trainset)),
            samples=eval_outputs(EVAL_RUN_SAMPLES, grid.run_benchmarks(config, eval_trainset)),
        params:
            model=get_run_model_dir,
            benchmarks=grid.run_benchmarks(config, eval_trainset),
            settings=settings_json(eval_settings(config)),
        wildcard_constraints:
            trainset=eval_trainset,
        log:
            "logs/eval/{model}/{trainset}/{algo}/{variant}/seed-{seed}.log",
        benchmark:
            "results/benchmarks/eval/{model}/{trainset}/{algo}/{variant}/seed-{seed}.tsv"
        threads: config["eval"]["resources"]["threads"]
        resources:
            mem_mb=config["eval"]["resources"]["mem_mb"],
            runtime=config["eval"]["resources"]["runtime"],
            gpu=config["eval"]["resources"].get("gpu", 0),
        conda:
            KAWHI_ENV
        shell:
            "kawhi evaluate --model {params.model} --benchmark {params.benchmarks} --data {input.data}"
            " --out {output.results} --model-name {wildcards.model}"
            " --checkpoint {wildcards.trainset}/{wildcards.algo}/{wildcards.variant}/seed-{wildcards.seed}"
            " --settings {params.settings:q} > {log} 2>&1"
