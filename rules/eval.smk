# rules for stage: eval (see rules/common.smk for paths and input functions)
# One job per (checkpoint x benchmark): `kawhi evaluate` runs lm-eval and writes the result JSON plus
# the per-sample log beside it. The base policy and every trained run are evaluated the same way.


rule evaluate_base:
    input:
        model=get_policy,
        data=get_bench_data,
    output:
        result=EVAL_BASE,
        samples=EVAL_BASE_SAMPLES,
    params:
        settings=get_base_eval_settings,
    wildcard_constraints:
        bench=eval_bench_pattern(),
    log:
        "logs/eval/{model}/base/{bench}.log",
    benchmark:
        "results/benchmarks/eval/{model}/base/{bench}.tsv"
    threads: config["eval"]["resources"]["threads"]
    resources:
        mem_mb=config["eval"]["resources"]["mem_mb"],
        runtime=config["eval"]["resources"]["runtime"],
        gpu=config["eval"]["resources"].get("gpu", 0),
    conda:
        KAWHI_ENV
    shell:
        "kawhi evaluate --model {input.model} --benchmark {wildcards.bench} --data {input.data}"
        " --out {output.result} --model-name {wildcards.model} --checkpoint base"
        " --settings {params.settings:q} > {log} 2>&1"


rule evaluate_run:
    input:
        done=get_run_model,
        data=get_bench_data,
    output:
        result=EVAL_RUN,
        samples=EVAL_RUN_SAMPLES,
    params:
        model=get_run_model_dir,
        settings=get_eval_settings,
    wildcard_constraints:
        bench=eval_bench_pattern(),
    log:
        "logs/eval/{model}/{trainset}/{algo}/{variant}/seed-{seed}/{bench}.log",
    benchmark:
        "results/benchmarks/eval/{model}/{trainset}/{algo}/{variant}/seed-{seed}/{bench}.tsv"
    threads: config["eval"]["resources"]["threads"]
    resources:
        mem_mb=config["eval"]["resources"]["mem_mb"],
        runtime=config["eval"]["resources"]["runtime"],
        gpu=config["eval"]["resources"].get("gpu", 0),
    conda:
        KAWHI_ENV
    shell:
        "kawhi evaluate --model {params.model} --benchmark {wildcards.bench} --data {input.data}"
        " --out {output.result} --model-name {wildcards.model}"
        " --checkpoint {wildcards.trainset}/{wildcards.algo}/{wildcards.variant}/seed-{wildcards.seed}"
        " --settings {params.settings:q} > {log} 2>&1"
