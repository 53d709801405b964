# rules for stage: models (see rules/common.smk for paths and input functions)
# build_model: a tiny model built from its transformers config class, or a real checkpoint fetched
# into the Hugging Face cache / linked from a local path (the directory is then a link).
# sft_warmstart: the tiny models' supervised warm-start on the synthetic suites (TRL SFTTrainer);
# its sft.json (inside the model directory) holds the loss curve and the held-out accuracy table.


rule build_model:
    output:
        directory(BASE_MODEL),
    params:
        settings=get_model_settings,
    log:
        "logs/models/{model}/build.log",
    threads: 1
    conda:
        KAWHI_ENV
    shell:
        "kawhi build-model --out {output} --settings {params.settings:q} > {log} 2>&1"


rule sft_warmstart:
    input:
        model=get_base_model,
        train=get_sft_data,
        test=get_sft_test_data,
    output:
        directory(SFT_MODEL),
    params:
        settings=get_sft_settings,
    log:
        "logs/models/{model}/sft.log",
    benchmark:
        "results/benchmarks/sft/{model}.tsv"
    threads: config["sft"]["resources"]["threads"]
    resources:
        mem_mb=config["sft"]["resources"]["mem_mb"],
        runtime=config["sft"]["resources"]["runtime"],
        gpu=config["sft"]["resources"].get("gpu", 0),
    conda:
        KAWHI_ENV
    shell:
        # max_steps, learning_rate, batch_size and the held-out settings come from config["sft"]
        "OMP_NUM_THREADS={threads} kawhi sft --model {input.model} --data {input.train} --test {input.test}"
        " --out {output} --settings {params.settings:q} > {log} 2>&1"
