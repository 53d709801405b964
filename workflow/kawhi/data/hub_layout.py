"""Which parquet files of a local copy of a hub dataset hold a split.

A ``huggingface-cli download --local-dir`` copy keeps the hub's layout: shards named
``<split>-00000-of-00002-<hash>.parquet`` (often under ``data/``), single files named after the split
(``testmini.parquet``, ``val.parquet``), and the dataset card (``README.md``) whose ``configs`` block maps
splits to files. Files are chosen by split name exactly, never by substring.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


class HubLayoutError(RuntimeError):
    """A local dataset folder where no file maps to the requested split (the message lists what is there)."""


# A hub parquet shard is named "<split>-00000-of-00002[-<hash>].parquet"; split names are \w+ (no "-").
_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}(?:-[0-9a-f]+)?$")


def split_of_file(path: Path) -> str:
    """The split a hub parquet file holds, from its name: "data/test-00000-of-00001-ab12.parquet" -> test,
    "testmini_text_only.parquet" -> testmini_text_only, "testmini/0000.parquet" (the hub's parquet
    conversion: ``<config>/<split>/NNNN.parquet``) -> testmini."""
    stem = path.stem
    if stem.isdigit():
        return path.parent.name
    return _SHARD_SUFFIX.sub("", stem)


def split_aliases(split: str) -> set[str]:
    """``split`` and the names ``datasets`` reads as the same split (validation: val, valid, dev; ...)."""
    from datasets.data_files import SPLIT_KEYWORDS

    for canonical, keywords in SPLIT_KEYWORDS.items():
        if split == str(canonical) or split in keywords:
            return {str(canonical), *keywords}
    return {split}


def card_data_files(root: Path, config: str | None) -> dict[str, list[str]] | None:
    """``{split: [glob patterns]}`` of ``config`` (else the card's only or "default" config) from the
    ``configs`` block of the dataset card (``README.md``) a hub download carries; None without one."""
    readme = root / "README.md"
    if not readme.is_file():
        return None
    from huggingface_hub import DatasetCard

    configs = DatasetCard.load(readme).data.to_dict().get("configs") or []
    by_name = {c.get("config_name", "default"): c.get("data_files") for c in configs}
    if not by_name:
        return None
    name = config if config in by_name else "default" if "default" in by_name else \
        next(iter(by_name)) if len(by_name) == 1 else None
    if name is None:
        raise HubLayoutError(f"{readme}: dataset card has configs {sorted(by_name)}, none is {config!r}")
    data_files = by_name[name]
    if isinstance(data_files, (str, list)) and not any(isinstance(d, dict) for d in _as_list(data_files)):
        return {"train": [str(p) for p in _as_list(data_files)]}
    return {str(d["split"]): [str(p) for p in _as_list(d["path"])] for d in data_files}


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def split_files(root: Path, split: str, config: str | None = None, name: str = "") -> list[Path]:
    """The parquet files of ``split`` in ``root``, a local copy of a hub dataset.

    The dataset card's ``configs`` block decides when the download has one (as ``datasets`` reads it);
    otherwise each file's split comes from its name (:func:`split_of_file`) and must equal ``split`` or
    one of its aliases (``validation`` = ``val``) exactly: ``test`` never picks up ``testmini``.
    A folder where no file maps to ``split`` is refused with the splits it holds.
    """
    patterns = card_data_files(root, config)
    if patterns is not None:
        wanted = [s for s in patterns if s in split_aliases(split)]
        if not wanted:
            raise HubLayoutError(f"benchmark {name!r}: the dataset card {root / 'README.md'} has no split "
                                 f"{split!r}; it lists {sorted(patterns)} (pass one with --split)")
        files = sorted({f for s in wanted for pattern in patterns[s] for f in root.glob(pattern)})
        if not files:
            raise HubLayoutError(f"benchmark {name!r}: the dataset card maps split {split!r} to "
                                 f"{patterns[wanted[0]]}, but no such file is in {root}")
        return files
    found: dict[str, list[Path]] = {}
    for f in sorted(root.rglob("*.parquet")):
        if not any(part.startswith(".") for part in f.relative_to(root).parts):
            found.setdefault(split_of_file(f), []).append(f)
    if not found:
        raise HubLayoutError(f"benchmark {name!r}: {root} holds no parquet files")
    files = [f for s, fs in found.items() if s in split_aliases(split) for f in fs]
    if not files:
        listing = "; ".join(f"{s}: {', '.join(str(f.relative_to(root)) for f in fs[:3])}"
                            + (f" (+{len(fs) - 3} more)" if len(fs) > 3 else "") for s, fs in sorted(found.items()))
        raise HubLayoutError(f"benchmark {name!r}: no parquet file of split {split!r} in {root}; it holds "
                             f"{listing} (pass one of {sorted(found)} with --split, or a parquet file as --source)")
    return files
