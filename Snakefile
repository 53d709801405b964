# KAWHI paper grid. `snakemake --cores all` runs the embedded default (config/config.yaml);
# `--configfile config/paper.yaml --profile config/profiles/slurm` runs the paper grid on a cluster.
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")


# Every job inherits fixed glibc malloc thresholds: a few per cent faster on CPU, results byte-identical
# (kawhi/malloc.py, benchmarks/malloc_tunables.py).
import os

from kawhi.malloc import set_malloc_tunables

set_malloc_tunables(os.environ)


# The embedded default, unless config files are given on the command line (--configfile
# config/paper.yaml): those then replace it rather than merge into it, which would put the tiny models
# into the paper grid.
from kawhi.config import ConfigError, read_config_file, validate_config

if not workflow.overwrite_configfiles:
    # read first with kawhi's reader: a YAML error then names the file and line (snakemake's does not)
    read_config_file("config/config.yaml")

    configfile: "config/config.yaml"


# The schema and every cross-key check `kawhi` runs, before any job; the message names the key and rule.
try:
    validate_config(config)
except ConfigError as err:
    raise WorkflowError(f"{err}") from None


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
