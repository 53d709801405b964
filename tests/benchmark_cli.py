"""`kawhi prepare-benchmark` and `kawhi score` as the official-code comparisons call them."""

from __future__ import annotations

import json
from pathlib import Path

import datasets

from kawhi.cli import main


def prepare(name: str, source: Path, out: Path, split: str | None = None) -> datasets.Dataset:
    """The rows `kawhi prepare-benchmark --source DIR` writes for ``name``."""
    args = ["prepare-benchmark", "--name", name, "--source", str(source), "--out", str(out)]
    assert main(args + (["--split", split] if split else [])) == 0
    return datasets.load_dataset("parquet", data_files=str(out), split="train")


def score(name: str, rows: list[dict], responses: list[str], tmp_path: Path, capsys) -> dict:
    """The metrics `kawhi score` prints for ``responses`` to ``rows`` (a samples file like evaluation's)."""
    predictions = tmp_path / f"{name}.samples.jsonl"
    with open(predictions, "w") as fh:
        for row, response in zip(rows, responses):
            fh.write(json.dumps({k: v for k, v in row.items() if k != "image"} | {"response": response},
                                default=str) + "\n")
    capsys.readouterr()
    assert main(["score", "--benchmark", name, "--predictions", str(predictions)]) == 0
    return json.loads(capsys.readouterr().out)["metrics"]
