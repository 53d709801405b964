# rules for stage: train (see rules/common.smk for paths and input functions)
# RL training: one run per (model, training data, algorithm, variant, seed) of the grid (Table 1, the
# chart experiment, the ablations and sweeps; kawhi.report.grid.all_runs). Only done.json is declared, on
# purpose: a crashed job loses nothing but done.json, the checkpoints/ in the run directory survive,
# and the rerun continues from the newest one (`kawhi train` checks that they were made with the same
# settings and inputs).


rule train:
    input:
        policy=get_policy,
        heads=get_heads_json,
        data=get_train_data,
    output:
        done=RUN_DONE,
    params:
        out_dir=get_run_dir,
        settings=get_train_settings,
    log:
        "logs/train/{model}/{trainset}/{algo}/{variant}/seed-{seed}.log",
    benchmark:
        "results/benchmarks/train/{model}/{trainset}/{algo}/{variant}/seed-{seed}.tsv"
    threads: config["training"]["resources"]["threads"]
    resources:
        mem_mb=config["training"]["resources"]["mem_mb"],
        runtime=config["training"]["resources"]["runtime"],
        gpu=config["training"]["resources"].get("gpu", 0),
    conda:
        KAWHI_ENV
    shell:
        # algorithm preset, KAWHI variant, seed, training data and every hyperparameter arrive inside --settings
        "OMP_NUM_THREADS={threads} kawhi train --model {input.policy} --algo {wildcards.algo}"
        " --variant {wildcards.variant} --heads {input.heads} --data {input.data} --out {params.out_dir}"
        " --settings {params.settings:q} > {log} 2>&1"
