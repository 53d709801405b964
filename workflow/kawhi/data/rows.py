"""Checks every reader of a data file shares, so that a bad file or row is named, never a bare crash.

- ``read_parquet`` / ``check_parquet``: a missing, empty (0 bytes), truncated or corrupt parquet file is a
  ``DataFileError`` naming the file (pyarrow's ``ArrowInvalid`` names none).
- ``answer_problem``: a null, NaN or blank answer (``str(None)`` would otherwise train on "None").
- ``image_problem``: an image that is missing or does not decode (checked by decoding it: a truncated PNG
  opens fine and fails only when its pixels are read).
- ``row_label``: how an error names a row: its ``id`` when the file has one, else its position.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DataFileError(ValueError):
    """A data file that cannot be read as what it claims to be; the message names the file."""


class BadRowError(ValueError):
    """A row without a usable image or answer; the message names the file or benchmark and the row id."""


@dataclass(frozen=True)
class BadRow:
    index: int
    row_id: str
    reason: str


def check_parquet(path: str | Path, what: str = "data") -> Path:
    """``path`` if it is a readable parquet file (its footer parses); DataFileError naming it otherwise."""
    import pyarrow
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise DataFileError(f"{what} file {path} is empty (0 bytes); rebuild it (delete it and rerun its rule)")
    try:
        pq.ParquetFile(path).metadata
    except (pyarrow.ArrowException, OSError) as err:
        raise DataFileError(f"{what} file {path} is not a readable parquet file (truncated or corrupt?): {err}; "
                            f"rebuild it (delete it and rerun its rule)") from err
    return path


def read_parquet(path: str | Path, what: str = "data", keep_in_memory: bool = False):
    """``datasets.Dataset`` of a parquet file; any read failure is a DataFileError naming the file."""
    import datasets
    import pyarrow

    path = check_parquet(path, what)
    try:
        return datasets.Dataset.from_parquet(str(path), keep_in_memory=keep_in_memory)
    except (pyarrow.ArrowException, OSError, ValueError, datasets.exceptions.DatasetGenerationError) as err:
        raise DataFileError(f"{what} file {path} could not be read: {err}") from err


def without_image_decoding(dataset):
    """``dataset`` with its image columns (single or lists) left as {"bytes", "path"}: decoding is
    ``image_problem``'s job, row by row, where a failure can be named."""
    import datasets

    def undecoded(feature):
        if isinstance(feature, datasets.Image):
            return datasets.Image(decode=False) if feature.decode else None
        if isinstance(feature, (datasets.List, datasets.Sequence)):
            inner = undecoded(feature.feature)
            return None if inner is None else type(feature)(inner)
        if isinstance(feature, list) and len(feature) == 1:
            inner = undecoded(feature[0])
            return None if inner is None else [inner]
        return None

    for name, feature in dataset.features.items():
        target = undecoded(feature)
        if target is not None:
            dataset = dataset.cast_column(name, target)
    return dataset


def answer_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a reference answer, or None when it can."""
    if value is None:
        return "no answer"
    if isinstance(value, float) and math.isnan(value):
        return "no answer (NaN)"
    if isinstance(value, str) and not value.strip():
        return "no answer"
    if isinstance(value, (list, tuple)) and not value:
        return "no answer"
    return None


def image_problem(value: Any) -> str | None:
    """Why ``value`` (PIL image, {"bytes", "path"} dict, bytes, path, or a list of those) is not a usable
    image, or None. Decodes it: only reading the pixels finds a truncated file."""
    from PIL import Image, UnidentifiedImageError

    if value is None:
        return "no image"
    if isinstance(value, (list, tuple)):
        if not value:
            return "no image"
        for item in value:
            problem = image_problem(item)
            if problem:
                return problem
        return None
    try:
        if isinstance(value, Image.Image):
            value.load()
            return None
        if isinstance(value, dict):
            if value.get("bytes") is not None:
                source: Any = io.BytesIO(value["bytes"])
            elif value.get("path"):
                source = value["path"]
            else:
                return "no image"
        elif isinstance(value, (bytes, bytearray)):
            source = io.BytesIO(value)
        elif isinstance(value, (str, Path)):
            source = str(value)
        else:
            return f"not an image ({type(value).__name__})"
        with Image.open(source) as image:
            image.load()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        return f"undecodable image ({type(err).__name__}: {str(err)[:120]})"
    return None


def row_label(row: dict[str, Any], index: int) -> str:
    """The row's ``id`` when it has one, else ``row N`` (its position in the file)."""
    row_id = row.get("id")
    return str(row_id) if row_id is not None else f"row {index}"


def find_bad_rows(dataset, image_column: str = "image", answer_column: str = "answer") -> list[BadRow]:
    """Rows of a ``datasets.Dataset`` whose answer is missing or whose image is missing or undecodable."""
    columns = [image_column, answer_column] + (["id"] if "id" in dataset.column_names else [])
    view = without_image_decoding(dataset.select_columns(columns))
    bad = []
    for i, row in enumerate(view):
        reason = image_problem(row[image_column]) or answer_problem(row[answer_column])
        if reason:
            bad.append(BadRow(i, row_label(row, i), reason))
    return bad


def describe_bad_rows(where: str | Path, bad: list[BadRow], hint: str) -> str:
    """One message naming the file and the first ten bad rows with their reasons."""
    listed = ", ".join(f"id {b.row_id!r} ({b.reason})" for b in bad[:10])
    more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
    return f"{where}: {len(bad)} bad row(s): {listed}{more}; {hint}"
