# Stage: the paper's tables and figures, the performance summary and the named targets that rebuild one
# artefact each (`snakemake --cores all table1`). Inputs and manifests come from rules/common.smk; every
# table and figure is registered with report() so `snakemake --report results/report.html` shows it.

TABLE1 = [report_file("table1.csv"), report_file("table1.md"), report_file("table1.tex")]
TABLE2 = [report_file("table2.csv"), report_file("table2.md"), report_file("table2.tex")]
FIGURE1 = [report_file("figure1.png"), report_file("figure1.pdf"), report_file("figure1.json")]
FIGURE3 = [report_file("figure3.png"), report_file("figure3.pdf")]
FIGURE4 = [report_file(f"figure4.{ext}") for ext in ("png", "pdf", "csv", "md", "tex")]  # radar + chart table
FIGURE5 = [report_file("figure5.png"), report_file("figure5.pdf"), report_file("figure5.csv")]
FIGURE7 = [report_file(f"figure7.{ext}") for ext in ("png", "pdf", "csv", "md", "tex")]  # + its table
SELECTOR = [report_file(f"selector.{ext}") for ext in ("png", "pdf", "csv", "md", "tex")]  # + its table
CURVES = [report_file("curves.png"), report_file("curves.pdf"), report_file("curves.csv")]
GALLERY = [report_file("gallery.png"), report_file("gallery.pdf")]
SUMMARY = [report_file("summary.json"), report_file("summary.md"), report_file("headline.rst")]
WARMSTART = [report_file("warmstart.csv"), report_file("warmstart.md")]

# rule all (Snakefile) builds these through common.smk's all_targets(); a sweep without variants has no figure
REPORT_TARGETS = TABLE1 + TABLE2 + FIGURE1 + FIGURE3 + FIGURE4 + FIGURE5 + CURVES + GALLERY + SUMMARY + WARMSTART
REPORT_TARGETS += FIGURE7 if config["grid"]["skip_ratio_variants"] else []
REPORT_TARGETS += SELECTOR if config["grid"]["selector_variants"] else []


localrules:
    make_table1,
    make_table2,
    make_figure1,
    make_figure3,
    make_figure4,
    make_figure5,
    make_figure7,
    make_selector,
    make_curves,
    make_gallery,
    make_summary,
    make_warmstart,


# ---- named targets: `snakemake --cores all table1` rebuilds one artefact ----------------------------------
NAMED_TARGETS = {"table1": TABLE1, "table2": TABLE2, "figure1": FIGURE1, "figure3": FIGURE3, "figure4": FIGURE4,
                 "figure5": FIGURE5, "figure7": FIGURE7, "selector": SELECTOR, "curves": CURVES, "gallery": GALLERY,
                 "summary": SUMMARY, "warmstart": WARMSTART}

for target, files in NAMED_TARGETS.items():

    rule:
        name:
            target
        input:
            files,
        localrule: True



# ---- artefacts ---------------------------------------------------------------------------------------


rule make_table1:
    input:
        get_table1_inputs,
    output:
        csv=report(TABLE1[0], caption="../report/table1.rst", category="Tables", labels={"table": "1 main results", "format": "csv"}),
        md=report(TABLE1[1], caption="../report/table1.rst", category="Tables", labels={"table": "1 main results", "format": "markdown"}),
        tex=report(TABLE1[2], caption="../report/table1.rst", category="Tables", labels={"table": "1 main results", "format": "latex"}),
    params:
        manifest=get_table1_manifest,
    log:
        f"{LOGS}/report/table1.log",
    threads: config["report"]["resources"]["threads"]
    resources:
        mem_mb=config["report"]["resources"]["mem_mb"],
        runtime=config["report"]["resources"]["runtime"],
    conda:
        KAWHI_ENV
    shell:
        "kawhi table1 --manifest {params.manifest:q} --out-csv {output.csv} --out-md {output.md}"
        " --out-tex {output.tex} > {log} 2>&1"


rule make_table2:
    input:
        get_table2_inputs,
    output:
        csv=report(TABLE2[0], caption="../report/table2.rst", category="Tables", labels={"table": "2 ablations", "format": "csv"}),
        md=report(TABLE2[1], caption="../report/table2.rst", category="Tables", labels={"table": "2 ablations", "format": "markdown"}),
        tex=report(TABLE2[2], caption="../report/table2.rst", category="Tables", labels={"table": "2 ablations", "format": "latex"}),
    params:
        manifest=get_table2_manifest,
    log:
        f"{LOGS}/report/table2.log",
    threads: config["report"]["resources"]["threads"]
    resources:
        mem_mb=config["report"]["resources"]["mem_mb"],
        runtime=config["report"]["resources"]["runtime"],
    conda:
        KAWHI_ENV
    shell:
        "kawhi table2 --manifest {params.manifest:q} --out-csv {output.csv} --out-md {output.md}"
        " --out-tex {output.tex} > {log} 2>&1"


rule make_figure1:
    input:
        unpack(get_figure1_inputs),
    output:
        png=report(FIGURE1[0], caption="../report/figure1.rst", category="Figures", labels={"figure": "1 error categories", "format": "png"}),
        pdf=report(FIGURE1[1], caption="../report/figure1.rst", category="Figures", labels={"figure": "1 error categories", "format": "pdf"}),
        counts=FIGURE1[2],
    params:
        manifest=get_figure1_manifest,
        data=get_figure1_data,
        judge=get_eval_judge,
        examples=config["report"]["figure1_examples"],
    log:
        f"{LOGS}/report/figure1.log",
    threads: config["report"]["resources"]["threads"]
    resources:
        mem_mb=config["report"]["resources"]["mem_mb"],
        runtime=config["report"]["resources"]["runtime"],
    conda:
        KAWHI_ENV
    shell:
        "kawhi figure1 --manifest {params.manifest:q} --data {params.data} --judge {params.judge:q}"
        " --examples {params.examples} --out-json {output.counts} --out-png {output.png}"
        " --out-pdf {output.pdf} > {log} 2>&1"


rule make_figure3:
    input:
        get_figure3_inputs,
    output:
        png=report(FIGURE3[0], caption="../report/figure3.rst", category="Figures", labels={"figure": "3 head ablation", "format": "png"}),
        pdf=report(FIGURE3[1], caption="../report/figure3.rst", category="Figures", labels={"figure": "3 head ablation", "format": "pdf"}),
    params:
        manifest=get_figure3_manifest,
    log:
        f"{LOGS}/report/figure3.log",
    threads: config["report"]["resources"]["threads"]
    resources:
        mem_mb=config["report"]["resources"]["mem_mb"],
        runtime=config["report"]["resources"]["runtime"],
    conda:
        KAWHI_ENV
    shell:
        "kawhi figure3 --manifest {params.manifest:q} --out-png {output.png} --out-pdf {output.pdf} > {log} 2>&1"


rule make_figure4:
    input:
        get_figure4_inputs,
    output:
        png=report(FIGURE4[0], caption="../report/figure4.rst", category="Figures", labels={"figure": "4 chart radar", "format": "png"}),
        pdf=report(FIGURE4[1], caption="../report/figure4.rst", category="Figures", labels={"figure": "4 chart radar", "format": "pdf"}),
        csv=report(FIGURE4[2], caption="../report/figure4.rst", category="Tables", labels={"table": "chart results", "format": "csv"}),
        md=report(FIGURE4[3], caption="../report/figure4.rst", category="Tables", labels={"table": "chart results", "format": "markdown"}),
        tex=FIGURE4[4],
    params:
        manifest=get_figure4_manifest,
    log:
        f"{LOGS}/report/figure4.log",
    threads: config["report"]["resources"]["threads"]
    resources:
        mem_mb=config["report"]["resources"]["mem_mb"],
        runtime=config["report"]["resources"]["runtime"],
    conda:
        KAWHI_ENV
    shell:
        "kawhi figure4 --manifest {params.manifest:q} --out-png {output.png} --out-pdf {output.pdf}"
        " --out-csv {output.csv} --out-md {output.md} --out-tex {output.tex} > {log} 2>&1"


rule make_figure5:
    input:
        get_figure5_inputs,
    output:
        png=report(FIGURE5[0], caption="../report/figure5.rst", category="Figures", labels={"figure": "5 step time", "format": "png"}),
        pdf=report(FIGURE5[1], caption="../report/figure5.rst", category="Figures", labels={"figure": "5 step time", "format": "pdf"}),
        csv=report(FIGURE5[2], caption="../report/figure5.rst", category="Figures", labels={"figure": "5 step time", "format": "csv"}),
    params:
        manifest=get_figure5_manifest,
    log:
        f"{LOGS}/report/figure5.log",
    threads: config["report"]["resources"]["threads"]
    resources:
        mem_mb=config["report"]["resources"]["mem_mb"],
        runtime=config["report"]["resources"]["runtime"],
    conda:
        KAWHI_ENV
    shell:
        "kawhi figure5 --manifest {params.manifest:q} --out-png {output.png} --out-pdf {output.pdf}"
        " --out-csv {output.csv} > {log} 2>&1"


rule make_figure7:
    input:
        get_figure7_inputs,
    output:
        png=report(FIGURE7[0], caption="../report/figure7.rst", category="Figures", labels={"figure": "7 skip ratio", "format": "png"}),
        pdf=report(FIGURE7[1], caption="../report/figure7.rst", category="Figures", labels={"figure": "7 skip ratio", "format": "pdf"}),
        csv=report(FIGURE7[2], caption="../report/figure7.rst", category="Tables", labels={"table": "skip ratio", "format": "csv"}),
        md=report(FIGURE7[3], caption="../report/figure7.rst", category="Tables", labels={"table": "skip ratio", "format": "markdown"}),
        tex=FIGURE7[4],
    params:
        manifest=get_figure7_manifest,
        skip_ratios=get_figure7_skip_ratios,
        reference=get_reference_variant,
    log:
        f"{LOGS}/report/figure7.log",
    threads: config["report"]["resources"]["threads"]
    resources:
        mem_mb=config["report"]["resources"]["mem_mb"],
        runtime=config["report"]["resources"]["runtime"],
    conda:
        KAWHI_ENV
    shell:
        "kawhi figure7 --manifest {params.manifest:q} --skip-ratios {params.skip_ratios:q}"
        " --reference-variant {params.reference} --out-png {output.png} --out-pdf {output.pdf}"
        " --out-csv {output.csv} --out-md {output.md} --out-tex {output.tex} > {log} 2>&1"


rule make_selector:
    input:
        get_selector_inputs,
    output:
        png=report(SELECTOR[0], caption="../report/selector.rst", category="Figures", labels={"figure": "token selector", "format": "png"}),
        pdf=report(SELECTOR[1], caption="../report/selector.rst", category="Figures", labels={"figure": "token selector", "format": "pdf"}),
        csv=report(SELECTOR[2], caption="../report/selector.rst", category="Tables", labels={"table": "token selector", "format": "csv"}),
        md=report(SELECTOR[3], caption="../report/selector.rst", category="Tables", labels={"table": "token selector", "format": "markdown"}),
        tex=SELECTOR[4],
    params:
        manifest=get_selector_manifest,
        reference=get_reference_variant,
    log:
        f"{LOGS}/report/selector.log",
    threads: config["report"]["resources"]["threads"]
    resources:
        mem_mb=config["report"]["resources"]["mem_mb"],
        runtime=config["report"]["resources"]["runtime"],
    conda:
        KAWHI_ENV
    shell:
        "kawhi selector --manifest {params.manifest:q} --reference-variant {params.reference}"
        " --out-png {output.png} --out-pdf {output.pdf} --out-csv {output.csv} --out-md {output.md}"
        " --out-tex {output.tex} > {log} 2>&1"


rule make_curves:
    input:
        get_curves_inputs,
    output:
        png=report(CURVES[0], caption="../report/curves.rst", category="Training", labels={"figure": "reward curves", "format": "png"}),
        pdf=report(CURVES[1], caption="../report/curves.rst", category="Training", labels={"figure": "reward curves", "format": "pdf"}),
        csv=report(CURVES[2], caption="../report/curves.rst", category="Training", labels={"figure": "reward curves", "format": "csv"}),
    params:
        manifest=get_curves_manifest,
    log:
        f"{LOGS}/report/curves.log",
    threads: config["report"]["resources"]["threads"]
    resources:
        mem_mb=config["report"]["resources"]["mem_mb"],
        runtime=config["report"]["resources"]["runtime"],
    conda:
        KAWHI_ENV
    shell:
        "kawhi curves --manifest {params.manifest:q} --out-png {output.png} --out-pdf {output.pdf}"
        " --out-csv {output.csv} > {log} 2>&1"


rule make_gallery:
    input:
        get_gallery_inputs,
    output:
        png=report(GALLERY[0], caption="../report/gallery.rst", category="Training", labels={"figure": "KAWHI gallery", "format": "png"}),
        pdf=report(GALLERY[1], caption="../report/gallery.rst", category="Training", labels={"figure": "KAWHI gallery", "format": "pdf"}),
    params:
        manifest=get_gallery_manifest,
        n=config["report"]["gallery_rollouts"],
    log:
        f"{LOGS}/report/gallery.log",
    threads: config["report"]["resources"]["threads"]
    resources:
        mem_mb=config["report"]["resources"]["mem_mb"],
        runtime=config["report"]["resources"]["runtime"],
    conda:
        KAWHI_ENV
    shell:
        "kawhi gallery --manifest {params.manifest:q} --n {params.n} --out-png {output.png}"
        " --out-pdf {output.pdf} > {log} 2>&1"


rule make_summary:
    input:
        get_summary_inputs,
    output:
        json=report(SUMMARY[0], caption="../report/summary.rst", category="Tables", labels={"table": "performance summary", "format": "json"}),
        md=report(SUMMARY[1], caption="../report/summary.rst", category="Tables", labels={"table": "performance summary", "format": "markdown"}),
        # the landing page (report/workflow.rst) includes it; registered so the report knows where it lies
        rst=report(SUMMARY[2], caption="../report/summary.rst", category="Tables", labels={"table": "performance summary", "format": "headline"}),
    params:
        manifest=get_summary_manifest,
    log:
        f"{LOGS}/report/summary.log",
    threads: config["report"]["resources"]["threads"]
    resources:
        mem_mb=config["report"]["resources"]["mem_mb"],
        runtime=config["report"]["resources"]["runtime"],
    conda:
        KAWHI_ENV
    shell:
        "kawhi summary --manifest {params.manifest:q} --out-json {output.json} --out-md {output.md}"
        " --out-rst {output.rst} > {log} 2>&1"


def get_warmstart_inputs(wildcards):
    """Every base (warm-started) policy on every math suite (what Table 1's RL trains and is scored on):
    where RL starts from. The base model is not evaluated on the chart suites elsewhere in the grid."""
    return [eval_base_json(m, b) for m in model_list() for b in config["math_benchmarks"]]


rule make_warmstart:
    input:
        get_warmstart_inputs,
    output:
        csv=report(WARMSTART[0], caption="../report/warmstart.rst", category="Tables", labels={"table": "warm-start pass@k", "format": "csv"}),
        md=report(WARMSTART[1], caption="../report/warmstart.rst", category="Tables", labels={"table": "warm-start pass@k", "format": "markdown"}),
    log:
        f"{LOGS}/report/warmstart.log",
    threads: 1
    conda:
        KAWHI_ENV
    shell:
        "kawhi warmstart --results {input} --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"
