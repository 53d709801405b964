"""ChartMimic's release, read as the official code reads it.

The release (``dataset-iclr.tar.gz`` on the hub repo ChartMimic/ChartMimic, unpacked as the official
README says) holds one folder per task and size (``direct_600``, ``direct_1800``, ``customized_600``, ...;
the older ``dataset-old.tar.gz``: ``ori_500``, ``customized_500``), each with ``NAME.pdf`` (the figure)
beside ``NAME.py`` (its reference code), and no PNG. The official loader
(``chart2code/data/data_utils.py``, ``Chart2CodeDataset._load_data``) renders each PDF's first page to a
PNG at 120 dpi (pdf2image); here pypdfium2 renders it at the same resolution, and an existing
``NAME.png`` beside the PDF is used as it is, as the official loader does.

The figure size the Direct Mimic instruction asks for is the official ``dimentions_info.jsonl``'s
``width``/``height``: the ``figsize`` of the reference code, in inches (the PDFs are saved with
``bbox_inches='tight'``, so their page size is not the figure size). It is read from the code's first
``figsize=(w, h)`` with literal numbers; a code without one falls back to the PDF's page size in inches.
"""

from __future__ import annotations

import ast
import tarfile
from pathlib import Path

RENDER_DPI = 120  # chart2code/data/data_utils.py: _convert_single_page_pdf_to_png(..., dpi=120)
POINTS_PER_INCH = 72.0


class ChartMimicReleaseError(RuntimeError):
    """A ChartMimic folder that cannot be read (the message lists the task folders found)."""


def code_figsize(code: str) -> tuple[float, float] | None:
    """The first ``figsize=(w, h)`` with literal numbers in ``code``, in inches; None if there is none."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "figsize" and isinstance(node.value, (ast.Tuple, ast.List)):
            values = [v.value for v in node.value.elts if isinstance(v, ast.Constant)]
            if len(values) == 2 and all(isinstance(v, (int, float)) for v in values):
                return float(values[0]), float(values[1])
    return None


def render_first_page(pdf: Path, dpi: int = RENDER_DPI):
    """The PDF's first page as an RGB PIL image at ``dpi``."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf))
    try:
        return document[0].render(scale=dpi / POINTS_PER_INCH).to_pil().convert("RGB")
    finally:
        document.close()


def page_inches(pdf: Path) -> tuple[float, float]:
    """The size of the PDF's first page in inches, to one decimal."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf))
    try:
        width_pt, height_pt = document[0].get_size()
    finally:
        document.close()
    return round(width_pt / POINTS_PER_INCH, 1), round(height_pt / POINTS_PER_INCH, 1)


def task_folders(root: Path) -> dict[str, Path]:
    """Folder name -> folder, for every folder under ``root`` (``root`` included) that holds at least one
    ``NAME.pdf`` with its ``NAME.py``."""
    folders = {}
    for folder in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        if any(pdf.with_suffix(".py").exists() for pdf in folder.glob("*.pdf")):
            folders.setdefault(folder.name, folder)
    return folders


def _unpack_archives(root: Path) -> None:
    for archive in sorted(root.rglob("*.tar.gz")):
        target = archive.with_name(archive.name.removesuffix(".tar.gz"))
        if not target.exists():
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")


def read_release(root: Path, task: str) -> list[dict]:
    """The examples of task folder ``task`` (chosen by its exact name) under ``root``: one dict per
    ``NAME.pdf`` + ``NAME.py`` pair with ``ExampleID``, ``Task``, ``InputFigure`` (PIL image), ``width``,
    ``height`` (inches) and ``GroundTruthFigureCode``. Archives are unpacked first when no folder has
    that name."""
    folders = task_folders(root)
    if task not in folders:
        _unpack_archives(root)
        folders = task_folders(root)
    if task not in folders:
        found = ", ".join(f"{name} ({len(list(f.glob('*.pdf')))} figures)" for name, f in sorted(folders.items()))
        raise ChartMimicReleaseError(
            f"ChartMimic: no task folder named {task!r} under {root}; found: {found or 'no folder with NAME.pdf + NAME.py'} "
            f"(pass one of them with --split)")
    rows = []
    for pdf in sorted(folders[task].rglob("*.pdf")):
        code_file = pdf.with_suffix(".py")
        if not code_file.exists():
            continue
        code = code_file.read_text()
        png = pdf.with_suffix(".png")
        if png.exists():  # the official loader renders only the PDFs without a PNG beside them
            from PIL import Image

            image = Image.open(png).convert("RGB")
        else:
            image = render_first_page(pdf)
        width, height = code_figsize(code) or page_inches(pdf)
        rows.append({"ExampleID": pdf.stem, "Task": task, "InputFigure": image, "width": width,
                     "height": height, "GroundTruthFigureCode": code})
    return rows
