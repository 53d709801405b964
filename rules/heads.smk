# rules for stage: heads (see rules/common.smk for paths and input functions)
# Head identification: the global head-ablation sweep of each model's starting policy on the
# MME-style benchmark. Its critical_heads.json is what the KAWHI training runs read.


rule identify_heads:
    input:
        model=get_policy,
        bench=get_heads_bench,
    output:
        heads=HEADS_JSON,
        ablation=HEADS_ABLATION,
        figure_png=HEADS_FIGURE_PNG,
        figure_pdf=HEADS_FIGURE_PDF,
    params:
        out_dir=get_heads_dir,
        settings=get_heads_settings,
    log:
        "logs/heads/{model}.log",
    benchmark:
        "results/benchmarks/heads/{model}.tsv"
    threads: config["heads"]["resources"]["threads"]
    resources:
        mem_mb=config["heads"]["resources"]["mem_mb"],
        runtime=config["heads"]["resources"]["runtime"],
        gpu=config["heads"]["resources"].get("gpu", 0),
    conda:
        KAWHI_ENV
    shell:
        # threshold, top_k, batch_size and limit come from config["heads"] inside --settings
        "OMP_NUM_THREADS={threads} kawhi identify-heads --model {input.model} --bench {input.bench}"
        " --out-dir {params.out_dir} --name {wildcards.model} --settings {params.settings:q} > {log} 2>&1"


rule published_heads:
    output:
        PUBLISHED_HEADS,
    params:
        heads=get_published_heads,
    log:
        "logs/heads/{model}.published.log",
    threads: 1
    conda:
        KAWHI_ENV
    shell:
        # heads.source: published: the KAWHI runs read the paper's list (heads.published) instead of the sweep's
        "kawhi published-heads --name {wildcards.model} --heads {params.heads} --out {output} > {log} 2>&1"
