# rules for stage: data (see rules/common.smk for paths and input functions)
# The synthetic suites: one parquet per suite and split, written by `kawhi make-data`.


def synthetic_pictures(wildcards):
    """Pictures per split: n_train / n_test; the head-identification suite's test split uses n_heads_bench."""
    sizes = config["synthetic"]
    if wildcards.split == "train":
        return sizes["n_train"]
    if wildcards.suite == config["heads_benchmark"]:
        return sizes["n_heads_bench"]
    return sizes["n_test"]


rule make_data:
    output:
        data_file("{suite}", "{split}"),
    params:
        n=synthetic_pictures,
        seed=config["seed"],
        image_size=config["synthetic"]["image_size"],
    log:
        "logs/data/{suite}/{split}.log",
    threads: 1
    conda:
        KAWHI_ENV
    shell:
        "kawhi make-data --suite {wildcards.suite} --split {wildcards.split} --n {params.n}"
        " --seed {params.seed} --image-size {params.image_size} --out {output} > {log} 2>&1"
