"""The report's tables, written as CSV (numbers), Markdown and LaTeX (formatted cells).

- ``build_table1``: Table 1 (math) and the chart table beside Figure 4. Per model the base model, then
  every run; each run's cell carries its change against the base model, each KAWHI row also (in
  parentheses) its change against its own algorithm. Where a model has fine-grained reward baselines
  (FT-RL, VPPO, Step-GRPO), they come first under a "Fine-grained reward" heading, as in the paper, and
  the other runs follow under "Uniform reward".
- ``build_table2``: a comparison against one reference row (full KAWHI): Table 2 (ablations), Figure
  7's skip ratios and the selector comparison. Each other row carries its change against the reference.

Every score is the mean over the row's seeds (the Seeds column says how many); every change carries
its 95 % interval from a paired bootstrap over test items pooled over seeds (kawhi.report.rows.compare)
and a ``*`` when that interval excludes 0. Where the paper publishes the row (paper profile), the cell
adds the paper's value and our difference from it. "Avg" is the mean over the row's benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kawhi.report.labels import FINE_GRAINED, FINE_GRAINED_HEADING, UNIFORM_HEADING, benchmark_label
from kawhi.report.manifest import EvalEntry, ReportInputError
from kawhi.report.output import latex_escape, latex_table, markdown_table, write_table_files
from kawhi.report.rows import AVG, Row, compare, load_rows
from kawhi.report.stats import Interval

SIGNIFICANT = "*"
NOT_EXACT = "†"
FOOTNOTE = ("Scores: mean over the row's seeds. Changes: 95 % interval from a paired bootstrap over test items "
            f"(pooled over seeds); {SIGNIFICANT} the interval excludes 0.")
NOT_EXACT_FOOTNOTE = (f"{NOT_EXACT} the primary metric is not a mean over items (e.g. WeMath's composite score): "
                      "the interval is that of the per-item accuracy difference.")


@dataclass(frozen=True)
class Table:
    """The numbers (``frame``, one row per table row) plus the formatted text versions."""

    frame: pd.DataFrame
    header: list[str]
    md_rows: list[list[str]]
    tex_rows: list[list[str]]
    group_starts: list[int]  # row indices where a new model group begins (LaTeX midrules)
    footnotes: list[str]


def signed(x: float) -> str:
    return f"{x:+.2f}"


def change_text(interval: Interval, latex: bool = False) -> str:
    """"+2.50 [+0.3, +4.6]*": the change, its 95 % interval and the marker when it excludes 0."""
    mark = SIGNIFICANT if interval.excludes_zero else ""
    if latex and mark:
        mark = r"$^{*}$"
    return f"{interval.estimate:+.2f} [{interval.low:+.1f}, {interval.high:+.1f}]{mark}"


def paper_text(row: Row, column: str, latex: bool = False) -> str:
    """" · paper 68.37 (-0.12)": the paper's value and ours minus it, or "" where the paper has none."""
    paper = row.published_score(column)
    if paper is None:
        return ""
    sep = r" \textperiodcentered{} " if latex else " · "
    return f"{sep}paper {paper:.2f} ({row.score(column) - paper:+.2f})"


def _record(row: Row, columns: list[str]) -> dict:
    record = {"model": row.model, "trainset": row.trainset, "method": row.label, "algo": row.algo,
              "variant": row.variant, "kawhi": row.kawhi, "detail": row.detail, "n_seeds": len(row.seeds),
              "seeds": " ".join(str(s) for s in row.seeds)}
    for column in columns:
        record[column] = row.score(column)
        paper = row.published_score(column)
        record[f"{column} paper"] = paper
        record[f"{column} vs paper"] = None if paper is None else row.score(column) - paper
        if column != AVG:
            record.update({f"{column} {k}": v for k, v in row.benches[column].pass_at.items()})
    return record


def _put_change(record: dict, name: str, changes: dict[str, Interval] | None, columns: list[str]) -> None:
    """``{col} vs NAME`` with its ``low``, ``high`` and ``significant`` columns (NaN where there is none)."""
    for column in columns:
        interval = changes[column] if changes else None
        record[f"{column} vs {name}"] = interval.estimate if interval else float("nan")
        record[f"{column} vs {name} low"] = interval.low if interval else float("nan")
        record[f"{column} vs {name} high"] = interval.high if interval else float("nan")
        record[f"{column} vs {name} significant"] = interval.excludes_zero if interval else None


def _header(rows: list[Row], benchmarks: list[str]) -> tuple[list[str], list[str]]:
    exact = {b: all(r.exact(b) for r in rows) for b in benchmarks}
    header = ["Method"] + [benchmark_label(b) + ("" if exact[b] else NOT_EXACT) for b in benchmarks]
    header += [AVG + ("" if all(exact.values()) else NOT_EXACT), "Seeds"]
    footnotes = [FOOTNOTE] + ([] if all(exact.values()) else [NOT_EXACT_FOOTNOTE])
    return header, footnotes


def _seeds_cell(row: Row) -> str:
    return str(len(row.seeds)) if row.seeds else "–"


def build_table1(entries: list[EvalEntry]) -> Table:
    """Table 1 (or the chart table) from a manifest of base-model and run eval results (module doc)."""
    rows = load_rows(entries)
    benchmarks = list(rows[0].benches)
    columns = benchmarks + [AVG]
    records, md_rows, tex_rows, group_starts = [], [], [], []
    for model in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == model]
        bases = [r for r in mine if r.is_base]
        if len(bases) != 1:
            raise ReportInputError(f"Table 1 needs exactly one base-model row for model '{model}', got {len(bases)}")
        base = bases[0]
        group_starts.append(len(tex_rows))
        fine = sorted((r for r in mine if r.algo in FINE_GRAINED), key=lambda r: FINE_GRAINED.index(r.algo))
        uniform = [r for r in mine if not r.is_base and r.algo not in FINE_GRAINED]
        headings = {id(fine[0]): FINE_GRAINED_HEADING, id(uniform[0]) if uniform else None: UNIFORM_HEADING} \
            if fine else {}
        for row in bases + fine + uniform:
            if id(row) in headings:  # a heading row in the text tables; the CSV says it in its group column
                md_rows.append([f"*{headings[id(row)]}*"] + [""] * (len(columns) + 1))
                tex_rows.append([rf"\multicolumn{{{len(columns) + 2}}}{{l}}{{\textit{{{headings[id(row)]}}}}}"])
            vs_base = None if row.is_base else compare(row, base)
            vs_algo = None
            if row.kawhi:
                own = [r for r in mine if not r.is_base and not r.kawhi and r.algo == row.algo
                       and r.trainset == row.trainset]
                if len(own) > 1:
                    raise ReportInputError(f"Table 1: several non-KAWHI rows for {model}/{row.algo}: "
                                           f"{[r.variant for r in own]}")
                vs_algo = compare(row, own[0]) if own else None
            record = _record(row, columns)
            record["group"] = "" if row.is_base else FINE_GRAINED_HEADING if row.algo in FINE_GRAINED \
                else UNIFORM_HEADING
            _put_change(record, "base", vs_base, columns)
            _put_change(record, "algo", vs_algo, columns)
            md = [f"{model} · {row.label}" if row.is_base else row.label]
            tex = [latex_escape(md[0])]
            for column in columns:
                score = f"{row.score(column):.2f}"
                md.append(" ".join(filter(None, [
                    score, change_text(vs_base[column]) if vs_base else "",
                    f"({change_text(vs_algo[column])})" if vs_algo else ""])) + paper_text(row, column))
                cell = score
                if vs_base:
                    cell += rf"\textsubscript{{{change_text(vs_base[column], latex=True)}}}"
                if vs_algo:
                    cell += rf" \textbf{{({change_text(vs_algo[column], latex=True)})}}"
                tex.append(cell + paper_text(row, column, latex=True))
            md.append(_seeds_cell(row))
            tex.append(_seeds_cell(row))
            records.append(record)
            md_rows.append(md)
            tex_rows.append(tex)
    header, footnotes = _header(rows, benchmarks)
    return Table(pd.DataFrame(records), header, md_rows, tex_rows, group_starts, footnotes)


def build_table2(entries: list[EvalEntry], reference_variant: str = "kawhi") -> Table:
    """Rows of one model and algorithm compared with the ``reference_variant`` row (module doc)."""
    rows = load_rows(entries)
    benchmarks = list(rows[0].benches)
    columns = benchmarks + [AVG]
    refs = [r for r in rows if r.variant == reference_variant]
    if len(refs) != 1:
        raise ReportInputError(f"Table 2 needs exactly one '{reference_variant}' row, got {[r.key for r in refs]}")
    reference = refs[0]
    records, md_rows, tex_rows = [], [], []
    for row in rows:
        changes = None if row is reference else compare(row, reference)
        record = _record(row, columns)
        record["reference"] = row is reference
        _put_change(record, "ref", changes, columns)
        md, tex = [row.label], [latex_escape(row.label)]
        for column in columns:
            score = f"{row.score(column):.2f}"
            md.append(score + (f" {change_text(changes[column])}" if changes else "") + paper_text(row, column))
            tex.append(score + (rf"\textsubscript{{{change_text(changes[column], latex=True)}}}" if changes else "")
                       + paper_text(row, column, latex=True))
        md.append(_seeds_cell(row))
        tex.append(_seeds_cell(row))
        records.append(record)
        md_rows.append(md)
        tex_rows.append(tex)
    header, footnotes = _header(rows, benchmarks)
    return Table(pd.DataFrame(records), header, md_rows, tex_rows, [0], footnotes)


def write_table(table: Table, csv: str | Path, md: str | Path, tex: str | Path, caption: str,
                label: str) -> None:
    notes = " ".join(table.footnotes)
    markdown = markdown_table(table.header, table.md_rows) + "\n" + "\n\n".join(table.footnotes) + "\n"
    latex = latex_table(table.header, table.tex_rows, f"{caption} {notes}", label,
                        midrules_before=table.group_starts)
    write_table_files(table.frame, csv, markdown, latex, md_path=md, tex_path=tex)


TABLE1_CAPTION = ("Main results: primary metric (%) per benchmark; runs show their change against the "
                  "base model, KAWHI rows also (in parentheses) against their own base algorithm.")
CHART_CAPTION = ("Chart results (the paper's Table 2): GRPO and GRPO+KAWHI trained on chart data; primary "
                 "metric (%) per benchmark, changes against the base model and (in parentheses) KAWHI's "
                 "change against GRPO.")
TABLE2_CAPTION = ("Ablations: primary metric (%) per benchmark; each row shows its change against full "
                  "KAWHI.")
FIGURE7_CAPTION = ("Skip-ratio sensitivity: GRPO+KAWHI at each SGUF skip ratio; each row shows its change "
                   "against the default skip ratio (full KAWHI).")
SELECTOR_CAPTION = ("SGUF against the attention-based selector: each row shows its change against "
                    "GRPO+KAWHI with SGUF.")
