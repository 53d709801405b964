# rules for Table 1's fine-grained reward baselines (FT-RL, VPPO, Step-GRPO; kawhi.report.grid.baseline_runs).
# Their training and evaluation go through rules/train.smk and rules/eval.smk like every run; the one
# thing of their own is Step-GRPO's key steps for hub training data. The synthetic suites write theirs
# from their solutions; a hub set (train_data.source) gets them from the configured judge (eval.judge)
# with R1-VL's extraction prompt. Without a judge the job stops with a message naming what is missing.


def get_key_steps_what(wildcards):
    """The config block the training set comes from (train_data or chart_train_data), for the messages."""
    return TRAIN_DATA[wildcards.trainset][0]


rule key_steps:
    input:
        prepared_train_data("{trainset}"),
    output:
        key_steps_data("{trainset}"),
    params:
        judge=get_judge,
        what=get_key_steps_what,
    log:
        "logs/data/{trainset}_train.key_steps.log",
    threads: 1
    conda:
        KAWHI_ENV
    shell:
        "kawhi key-steps --data {input} --out {output} --judge {params.judge:q} --what {params.what}"
        " > {log} 2>&1"
