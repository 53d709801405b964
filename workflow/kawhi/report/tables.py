"""Table 1 (main results) and Table 2 (ablations), computed from eval JSONs and written as CSV/MD/LaTeX.

Table 1: per model, the base model's scores, then every algorithm without and with KAWHI; each run's
cell carries its change against the base model, and each KAWHI row also its change against its own
base algorithm. Table 2: the ablation algorithm without KAWHI (reference), with full KAWHI, then each
ablation variant; each cell carries its drop against full KAWHI. "Avg" is the mean over the row's
benchmarks. The CSV holds the numbers; Markdown and LaTeX hold the formatted cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kawhi.report.output import latex_escape, latex_table, markdown_table, write_table_files
from kawhi.report.manifest import BASE_ROW, EvalEntry, ReportInputError
from kawhi.report.results import load_scores

AVG = "Avg"

BENCHMARK_LABELS = {
    "mathvista": "MathVista", "mathverse": "MathVerse", "mathvision": "MathVision", "wemath": "WeMath",
    "chartqa": "ChartQA", "chartqapro": "ChartQA-Pro", "charxiv_descriptive": "CharXiv-D",
    "charxiv_reasoning": "CharXiv-R", "chartmimic": "ChartMimic", "mme": "MME",
}
ALGO_LABELS = {"grpo": "GRPO", "dapo": "DAPO", "gspo": "GSPO", BASE_ROW: "Base model"}
VARIANT_LABELS = {
    "baseline": "", "kawhi": "+KAWHI", "kawhi-random": "w/ random regions",
    "kawhi-inverse": "w/ inverse regions", "kawhi-kk": "w/ Key-Key alignment",
    "kawhi-token": "w/ token granularity",
}


def benchmark_label(name: str) -> str:
    return BENCHMARK_LABELS.get(name, name)


def method_label(algo: str, variant: str) -> str:
    """"GRPO", "GRPO+KAWHI", "GRPO+KAWHI w/ random regions", "Base model"."""
    name = ALGO_LABELS.get(algo, algo.upper())
    if algo == BASE_ROW or variant == "baseline":
        return name
    if variant == "kawhi":
        return name + "+KAWHI"
    return f"{name}+KAWHI {VARIANT_LABELS.get(variant, variant)}"


def signed(x: float) -> str:
    return "" if x is None or math.isnan(x) else f"{x:+.2f}"


def arrow(drop: float) -> str:
    """↓X.XX for a drop, ↑X.XX for a gain (a negative drop)."""
    return "" if drop is None or math.isnan(drop) else ("↓" if drop >= 0 else "↑") + f"{abs(drop):.2f}"


def latex_arrow(drop: float) -> str:
    return arrow(drop).replace("↓", r"$\downarrow$").replace("↑", r"$\uparrow$")


@dataclass(frozen=True)
class Table:
    """The numbers (``frame``, one row per table row) plus the formatted text versions."""

    frame: pd.DataFrame
    header: list[str]
    md_rows: list[list[str]]
    tex_rows: list[list[str]]
    group_starts: list[int]  # row indices where a new model group begins (LaTeX midrules)


def _ordered_benchmarks(entries: list[EvalEntry]) -> list[str]:
    return list(dict.fromkeys(e.benchmark for e in entries))


def _score_matrix(entries: list[EvalEntry]) -> tuple[pd.DataFrame, list[str], list[tuple]]:
    """(model, algo, variant) x benchmark scores, the benchmark order, the row order (first seen)."""
    scores = load_scores(entries)
    benchmarks = _ordered_benchmarks(entries)
    keys = list(dict.fromkeys(zip(scores.model, scores.algo, scores.variant)))
    dup = scores.duplicated(["model", "algo", "variant", "benchmark"], keep=False)
    if dup.any():
        raise ReportInputError(f"manifest lists a result twice: {scores[dup].path.tolist()}")
    wide = scores.pivot(index=["model", "algo", "variant"], columns="benchmark", values="score")
    missing = wide[benchmarks].isna().stack()
    if missing.any():
        holes = [f"{m}/{a}/{v}:{b}" for (m, a, v, b) in missing[missing].index]
        raise ReportInputError(f"manifest lacks eval results for {holes}")
    wide = wide.loc[keys, benchmarks]
    wide[AVG] = wide[benchmarks].mean(axis=1)
    return wide, benchmarks, keys


def build_table1(entries: list[EvalEntry]) -> Table:
    """Table 1 from a manifest of base-model and main-run eval results (see module doc)."""
    wide, benchmarks, keys = _score_matrix(entries)
    kawhi_of = {(e.model, e.algo, e.variant): e.kawhi for e in entries}
    columns = benchmarks + [AVG]
    records, md_rows, tex_rows, group_starts = [], [], [], []
    for model in dict.fromkeys(k[0] for k in keys):
        base_keys = [k for k in keys if k[0] == model and k[1] == BASE_ROW]
        if len(base_keys) != 1:
            raise ReportInputError(f"Table 1 needs exactly one base-model row for model '{model}', "
                                   f"got {len(base_keys)}")
        base = wide.loc[base_keys[0]]
        group_starts.append(len(records))
        model_keys = base_keys + [k for k in keys if k[0] == model and k[1] != BASE_ROW]
        for key in model_keys:
            _, algo, variant = key
            row = wide.loc[key]
            own_base = None
            if kawhi_of[key]:
                refs = [k for k in keys if k[0] == model and k[1] == algo and not kawhi_of[k]]
                if len(refs) > 1:
                    raise ReportInputError(f"Table 1: several non-KAWHI rows for {model}/{algo}: {refs}")
                own_base = wide.loc[refs[0]] if refs else None
            record = {"model": model, "method": method_label(algo, variant), "algo": algo,
                      "variant": variant, "kawhi": kawhi_of[key]}
            md = [f"{model} · {record['method']}" if algo == BASE_ROW else record["method"]]
            tex = [latex_escape(md[0])]
            for col in columns:
                score = float(row[col])
                vs_base = float("nan") if algo == BASE_ROW else score - float(base[col])
                vs_algo = float("nan") if own_base is None else score - float(own_base[col])
                record[col] = score
                record[f"{col} vs base"] = vs_base
                record[f"{col} vs algo"] = vs_algo
                md.append(" ".join(filter(None, [f"{score:.2f}", signed(vs_base),
                                                 f"({signed(vs_algo)})" if own_base is not None else ""])))
                cell = f"{score:.2f}"
                if algo != BASE_ROW:
                    cell += rf"\textsubscript{{{signed(vs_base)}}}"
                if own_base is not None:
                    cell += rf" \textbf{{({signed(vs_algo)})}}"
                tex.append(cell)
            records.append(record)
            md_rows.append(md)
            tex_rows.append(tex)
    header = ["Method"] + [benchmark_label(b) for b in benchmarks] + [AVG]
    return Table(pd.DataFrame(records), header, md_rows, tex_rows, group_starts)


def build_table2(entries: list[EvalEntry], reference_variant: str = "kawhi") -> Table:
    """Table 2 from a manifest of one model x algorithm's variants; drops are against ``reference_variant``."""
    wide, benchmarks, keys = _score_matrix(entries)
    refs = [k for k in keys if k[2] == reference_variant]
    if len(refs) != 1:
        raise ReportInputError(f"Table 2 needs exactly one '{reference_variant}' row, got {refs}")
    reference = wide.loc[refs[0]]
    columns = benchmarks + [AVG]
    records, md_rows, tex_rows = [], [], []
    for key in keys:
        model, algo, variant = key
        row = wide.loc[key]
        record = {"model": model, "method": method_label(algo, variant), "algo": algo, "variant": variant,
                  "reference": key == refs[0]}
        md, tex = [record["method"]], [latex_escape(record["method"])]
        for col in columns:
            score = float(row[col])
            drop = float(reference[col]) - score
            record[col] = score
            record[f"{col} drop"] = drop
            is_ref = key == refs[0]
            md.append(f"{score:.2f}" + ("" if is_ref else f" {arrow(drop)}"))
            tex.append(f"{score:.2f}" + ("" if is_ref else rf"\textsubscript{{{latex_arrow(drop)}}}"))
        records.append(record)
        md_rows.append(md)
        tex_rows.append(tex)
    header = ["Method"] + [benchmark_label(b) for b in benchmarks] + [AVG]
    return Table(pd.DataFrame(records), header, md_rows, tex_rows, [0])


def write_table(table: Table, csv: str | Path, md: str | Path, tex: str | Path, caption: str,
                label: str) -> None:
    markdown = markdown_table(table.header, table.md_rows)
    latex = latex_table(table.header, table.tex_rows, caption, label, midrules_before=table.group_starts)
    write_table_files(table.frame, csv, markdown, latex, md_path=md, tex_path=tex)


TABLE1_CAPTION = ("Main results: primary metric (%) per benchmark; runs show their change against the "
                  "base model, KAWHI rows also (in parentheses) against their own base algorithm.")
TABLE2_CAPTION = ("Ablations: primary metric (%) per benchmark; each row shows its drop against full "
                  "KAWHI.")
