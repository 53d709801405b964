# Stage: the paper's tables and figures and the performance summary. One table, kawhi.report.grid.ARTEFACTS,
# gives each artefact its outputs, report() entries and command; from it come one rule make_<name> running
# `kawhi <name>` (inputs and manifest from kawhi.report.grid) and one named target <name> that rebuilds
# it (`snakemake --cores all table1`). `snakemake --report results/report.html` shows every table and figure.
from kawhi.report.grid import ARTEFACTS, report_artefacts, report_entry

NAMED_TARGETS = {name: artefact.files() for name, artefact in ARTEFACTS.items()}
# rule all (Snakefile) builds these through common.smk's all_targets(); a sweep without variants has no figure
REPORT_TARGETS = [path for name in report_artefacts(config) for path in NAMED_TARGETS[name]]


def report_inputs(name):
    """The named input function of artefact ``name``: its input files (grid.report_inputs)."""

    def get_report_inputs(wildcards):
        return grid.report_inputs(config, name)

    return get_report_inputs


def report_arguments(name):
    """The named params function of artefact ``name``: `kawhi <name>`'s arguments (grid.report_arguments)."""

    def get_report_arguments(wildcards, input, output):
        return grid.report_arguments(config, name, input, dict(output.items()))

    return get_report_arguments


def report_outputs(name):
    """{key: path} of artefact ``name``; each path registered with report() unless the report skips it."""
    outputs = {key: report_file(file) for key, (file, _) in ARTEFACTS[name].outputs.items()}
    entries = {key: report_entry(name, key) for key in outputs}
    return {key: report(path, **entries[key]) if entries[key] else path for key, path in outputs.items()}


def report_resources(name):
    """config report.resources (mem_mb, runtime) for the artefacts that use them, else Snakemake's defaults."""
    resources = config["report"]["resources"]
    return {k: resources[k] for k in ("mem_mb", "runtime")} if ARTEFACTS[name].uses_report_resources else {}


for name, artefact in ARTEFACTS.items():

    rule:
        name:
            f"make_{name}"
        input:
            unpack(report_inputs(name)),
        output:
            **report_outputs(name),
        params:
            arguments=report_arguments(name),
        log:
            f"logs/report/{name}.log",
        threads: config["report"]["resources"]["threads"] if artefact.uses_report_resources else 1
        resources:
            **report_resources(name),
        localrule: True
        conda:
            KAWHI_ENV
        shell:
            "kawhi {params.arguments} > {log} 2>&1"

    rule:
        name:
            name
        input:
            NAMED_TARGETS[name],
        localrule: True
