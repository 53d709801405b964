"""``kawhi table1|table2|figure1|figure3|figure4|figure5|figure7|selector|curves|gallery|summary|warmstart``: one
subcommand per artefact.

Every command takes its inputs explicitly: a *manifest* (JSON list, inline or as a file) that names each
eval JSON or training run and says what it is; kawhi.report.grid builds those manifests for the rules in
rules/report.smk.
"""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger("kawhi.report")


def _manifest_arg(p: argparse.ArgumentParser, what: str = "eval results") -> None:
    p.add_argument("--manifest", required=True,
                   help=f"JSON list (inline or a file) naming the {what} and what each one is")


def _figure_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out-png", required=True)
    p.add_argument("--out-pdf", default=None)


def _table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    p.add_argument("--out-tex", required=True)


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("table1", help="Table 1: main results (CSV, Markdown, LaTeX)")
    _manifest_arg(p)
    _table_args(p)
    p.set_defaults(handler=run_table1)

    p = subparsers.add_parser("table2", help="Table 2: ablations (CSV, Markdown, LaTeX)")
    _manifest_arg(p)
    p.add_argument("--reference-variant", default="kawhi", help="the row the changes are measured against")
    _table_args(p)
    p.set_defaults(handler=run_table2)

    p = subparsers.add_parser("figure1", help="Figure 1: error categories of the GRPO-trained model's wrong answers")
    _manifest_arg(p, "eval results of the classified runs (their .samples.jsonl are read)")
    p.add_argument("--data", nargs="*", action="extend", default=[], metavar="BENCH=PARQUET",
                   help="benchmark parquets, for the example cases' images")
    p.add_argument("--judge", default=None,
                   help="the eval.judge config block as JSON; '{}' or absent: no judge (real benchmarks left out)")
    p.add_argument("--examples", type=int, default=2)
    p.add_argument("--out-json", required=True, help="the category counts behind the figure")
    _figure_args(p)
    p.set_defaults(handler=run_figure1)

    p = subparsers.add_parser("figure3", help="Figure 3: head-ablation sweep, one panel per model")
    _manifest_arg(p, "models' ablation.csv and critical_heads.json")
    _figure_args(p)
    p.set_defaults(handler=run_figure3)

    p = subparsers.add_parser("figure4", help="Figure 4: radar of GRPO vs GRPO+KAWHI on chart benchmarks, "
                                              "and the chart table beside it")
    _manifest_arg(p)
    _figure_args(p)
    _table_args(p)
    p.set_defaults(handler=run_figure4)

    p = subparsers.add_parser("figure5", help="Figure 5: training time per step with and without KAWHI")
    _manifest_arg(p, "training runs (done.json; metrics.jsonl with step_time beside it)")
    _figure_args(p)
    p.add_argument("--out-csv", required=True, help="the numbers behind the figure")
    p.set_defaults(handler=run_figure5)

    p = subparsers.add_parser("figure7", help="Figure 7: skip-ratio sensitivity, and its table")
    _manifest_arg(p)
    p.add_argument("--skip-ratios", required=True, help="JSON: variant -> its kawhi.sguf.skip_ratio")
    p.add_argument("--reference-variant", default="kawhi", help="the row the table's changes are measured against")
    _figure_args(p)
    _table_args(p)
    p.set_defaults(handler=run_figure7)

    p = subparsers.add_parser("selector", help="SGUF against the attention-based token selector: figure and table")
    _manifest_arg(p)
    p.add_argument("--reference-variant", default="kawhi", help="the row the table's changes are measured against")
    _figure_args(p)
    _table_args(p)
    p.set_defaults(handler=run_selector)

    p = subparsers.add_parser("curves", help="training curves: reward vs step per run")
    _manifest_arg(p, "training runs (done.json; metrics.jsonl beside it)")
    p.add_argument("--out-csv", default=None, help="the plotted points")
    _figure_args(p)
    p.set_defaults(handler=run_curves)

    p = subparsers.add_parser("gallery", help="KAWHI gallery: rendered training rollouts")
    _manifest_arg(p, "training runs whose gallery/ rollouts are drawn")
    p.add_argument("--n", type=int, default=4, help="rollouts to draw")
    p.add_argument("--out-dir", default=None, help="also keep each rendered rollout here")
    _figure_args(p)
    p.set_defaults(handler=run_gallery)

    p = subparsers.add_parser("summary", help="performance summary (JSON, Markdown) and the landing page's headline")
    _manifest_arg(p)
    p.add_argument("--out-json", required=True)
    p.add_argument("--out-md", required=True)
    p.add_argument("--out-rst", default=None, help="the headline results as reStructuredText (report landing page)")
    p.set_defaults(handler=run_summary)

    p = subparsers.add_parser("warmstart", help="warm-start table: base policies' sampled pass@1 and pass@k per suite")
    p.add_argument("--results", nargs="+", required=True, help="base-model eval JSONs (samples logs beside them)")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    p.set_defaults(handler=run_warmstart)


def run_table1(args: argparse.Namespace) -> int:
    from kawhi.report.manifest import parse_manifest
    from kawhi.report.tables import TABLE1_CAPTION, build_table1, write_table

    table = build_table1(parse_manifest(args.manifest))
    write_table(table, args.out_csv, args.out_md, args.out_tex, TABLE1_CAPTION, "tab:main")
    log.info("Table 1: %d rows -> %s", len(table.frame), args.out_md)
    return 0


def run_table2(args: argparse.Namespace) -> int:
    from kawhi.report.manifest import parse_manifest
    from kawhi.report.tables import TABLE2_CAPTION, build_table2, write_table

    table = build_table2(parse_manifest(args.manifest), reference_variant=args.reference_variant)
    write_table(table, args.out_csv, args.out_md, args.out_tex, TABLE2_CAPTION, "tab:ablation")
    log.info("Table 2: %d rows -> %s", len(table.frame), args.out_md)
    return 0


def run_figure1(args: argparse.Namespace) -> int:
    from kawhi.report.figure1 import write_figure1
    from kawhi.report.manifest import parse_manifest

    data = {}
    for item in args.data:
        bench, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"--data expects BENCH=PARQUET, got {item!r}")
        data[bench] = path
    judge = json.loads(args.judge) if args.judge else {}
    judge = judge or None
    write_figure1(parse_manifest(args.manifest), data, judge, args.out_json, args.out_png, args.out_pdf,
                  n_examples=args.examples)
    return 0


def run_figure3(args: argparse.Namespace) -> int:
    from kawhi.report.figure3 import load_heads_result, write_figure3
    from kawhi.report.manifest import HeadsEntry, parse_manifest

    results = [load_heads_result(e.model, e.ablation_csv, e.heads_json, e.published, e.source)
               for e in parse_manifest(args.manifest, HeadsEntry)]
    write_figure3(results, args.out_png, args.out_pdf)
    return 0


def run_figure4(args: argparse.Namespace) -> int:
    from kawhi.report.figure4 import write_figure4
    from kawhi.report.manifest import parse_manifest
    from kawhi.report.tables import CHART_CAPTION, build_table1, write_table

    entries = parse_manifest(args.manifest)
    write_figure4(entries, args.out_png, args.out_pdf)
    write_table(build_table1(entries), args.out_csv, args.out_md, args.out_tex, CHART_CAPTION, "tab:charts")
    return 0


def run_figure5(args: argparse.Namespace) -> int:
    from kawhi.report.efficiency import write_efficiency
    from kawhi.report.manifest import RunEntry, parse_manifest

    frame = write_efficiency(parse_manifest(args.manifest, RunEntry), args.out_png, args.out_pdf, args.out_csv)
    for _, line in frame.iterrows():
        log.info("%s/%s: step time x%.3f with KAWHI [%.3f, %.3f]", line.model, line.algo, line.ratio,
                 line.ratio_low, line.ratio_high)
    return 0


def run_figure7(args: argparse.Namespace) -> int:
    from kawhi.report.manifest import parse_manifest
    from kawhi.report.sweeps import write_figure7
    from kawhi.report.tables import FIGURE7_CAPTION, build_table2, write_table

    entries = parse_manifest(args.manifest)
    write_figure7(entries, json.loads(args.skip_ratios), args.out_png, args.out_pdf)
    write_table(build_table2(entries, reference_variant=args.reference_variant), args.out_csv, args.out_md,
                args.out_tex, FIGURE7_CAPTION, "tab:skip-ratio")
    return 0


def run_selector(args: argparse.Namespace) -> int:
    from kawhi.report.manifest import parse_manifest
    from kawhi.report.sweeps import write_selector
    from kawhi.report.tables import SELECTOR_CAPTION, build_table2, write_table

    entries = parse_manifest(args.manifest)
    write_selector(entries, args.out_png, args.out_pdf)
    write_table(build_table2(entries, reference_variant=args.reference_variant), args.out_csv, args.out_md,
                args.out_tex, SELECTOR_CAPTION, "tab:selector")
    return 0


def run_curves(args: argparse.Namespace) -> int:
    from kawhi.report.curves import write_curves
    from kawhi.report.manifest import RunEntry, parse_manifest

    write_curves(parse_manifest(args.manifest, RunEntry), args.out_png, args.out_pdf, args.out_csv)
    return 0


def run_gallery(args: argparse.Namespace) -> int:
    from kawhi.report.gallery import write_gallery_figure
    from kawhi.report.manifest import RunEntry, parse_manifest

    write_gallery_figure(parse_manifest(args.manifest, RunEntry), args.n, args.out_png, args.out_pdf, args.out_dir)
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from kawhi.report.manifest import parse_manifest
    from kawhi.report.summary import write_summary

    summary = write_summary(parse_manifest(args.manifest), args.out_json, args.out_md, args.out_rst)
    log.info("KAWHI against its algorithm: %d significant gains, %d significant losses, %d not significant",
             summary["significant_gains"], summary["significant_losses"], summary["not_significant"])
    return 0


def run_warmstart(args: argparse.Namespace) -> int:
    from kawhi.report.warmstart import write_warmstart

    frame = write_warmstart(args.results, args.out_csv, args.out_md)
    log.info("%d of %d (model, suite) rows in the sharpening regime", int(frame["in_regime"].sum()), len(frame))
    return 0
