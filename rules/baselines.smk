# rules for Table 1's fine-grained reward baselines (FT-RL, VPPO, Step-GRPO; common.smk's baseline_runs).
# Their training and evaluation go through rules/train.smk and rules/eval.smk like every run; the one
# thing of their own is Step-GRPO's key steps for hub training data. The synthetic suites write theirs
# from their solutions; a hub set (train_data.source) gets them from the configured judge (eval.judge)
# with R1-VL's extraction prompt. Without a judge the job stops with a message naming what is missing.


def get_key_steps_judge(wildcards):
    return settings_json(config["eval"].get("judge") or {})


rule key_steps:
    input:
        prepared_train_data("{trainset}"),
    output:
        key_steps_data("{trainset}"),
    params:
        judge=get_key_steps_judge,
        what=lambda wildcards: TRAIN_DATA[wildcards.trainset][0],
    log:
        f"{LOGS}/data/{{trainset}}_train.key_steps.log",
    threads: 1
    conda:
        "../envs/eval.yaml"
    conda:
        KAWHI_ENV
    shell:
        "kawhi key-steps --data {input} --out {output} --judge {params.judge:q} --what {params.what}"
        " > {log} 2>&1"
