# KAWHI paper grid. `snakemake --cores all` runs the embedded default (config/config.yaml);
# `--configfile config/paper.yaml --profile config/profiles/slurm` runs the paper grid on a cluster.
from snakemake.utils import min_version, validate

min_version("9.0")


# The embedded default, unless config files are given on the command line (--configfile
# config/paper.yaml): those then replace it rather than merge into it, which would put the tiny models
# into the paper grid.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, schema="config/schema/config.schema.yaml", set_default=True)


# the HTML report's landing page: the grid and its headline results with their intervals
report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/data.smk"
include: "rules/benchmarks.smk"
include: "rules/heads.smk"
include: "rules/train.smk"
include: "rules/baselines.smk"
include: "rules/eval.smk"
include: "rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
