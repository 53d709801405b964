"""Atomic writers for report artefacts: a figure to PNG (and PDF), a table to CSV/Markdown/LaTeX."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from kawhi.atomic import atomic_path, write_text


def save_figure(fig, paths: Iterable[str | Path], dpi: int = 150) -> None:
    """Save ``fig`` to every path (format from the suffix), each atomically, then close it."""
    import matplotlib.pyplot as plt

    for path in paths:
        if path is None:
            continue
        path = Path(path)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table (first column left-aligned, the rest right-aligned)."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = [":---"] + ["---:"] * (len(header) - 1)
    return "\n".join([line(header), line(align)] + [line(r) for r in rows]) + "\n"


def latex_escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                       ("#", r"\#")):
        text = text.replace(char, repl)
    return text


def latex_table(header: list[str], rows: list[list[str]], caption: str, label: str,
                midrules_before: Iterable[int] = ()) -> str:
    """A booktabs table; ``rows`` cells are already LaTeX; ``midrules_before`` are row indices."""
    rules = set(midrules_before)
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    for i, row in enumerate(rows):
        if i in rules and i > 0:
            lines.append(r"\midrule")
        lines.append(" & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{latex_escape(caption)}}}",
              rf"\label{{{label}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table_files(frame, csv: str | Path, markdown: str | None, latex: str | None,
                      md_path: str | Path | None = None, tex_path: str | Path | None = None) -> None:
    """CSV from the numeric frame; Markdown and LaTeX from their already-formatted texts."""
    write_text(csv, frame.to_csv(index=False, float_format="%.4f"))
    if md_path is not None and markdown is not None:
        write_text(md_path, markdown)
    if tex_path is not None and latex is not None:
        write_text(tex_path, latex)
