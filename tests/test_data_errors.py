"""Corrupt data is named: a truncated or empty parquet names its file, a row with an undecodable image or
a null/NaN answer names its file and row id (and is skipped and counted where skip_bad_rows allows)."""

import math

import pandas as pd
import pytest

from kawhi.data.rows import BadRowError, DataFileError, find_bad_rows, read_parquet
from kawhi.eval.tasks import load_benchmark
from kawhi.models.sft import load_rows
from kawhi.train.run import load_rl_dataset

READERS = {
    "training": lambda path: load_rl_dataset([path]),
    "evaluation": lambda path: load_benchmark(path),
    "sft": lambda path: load_rows(path),
}


@pytest.fixture
def good(suite_factory):
    return suite_factory("shapes_count", "train", n=4)


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_unreadable_parquet_names_the_file(good, tmp_path, reader, damage):
    path = tmp_path / f"{damage}.parquet"
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    with pytest.raises(DataFileError, match=str(path)):
        READERS[reader](path)


def _with_row(good, tmp_path, index, **changes):
    frame = pd.read_parquet(good)
    for column, value in changes.items():
        if isinstance(value, float):
            frame[column] = frame[column].astype(object)
        frame.at[index, column] = value
    if "answer" in changes and isinstance(changes["answer"], float):
        frame["answer"] = pd.to_numeric(frame["answer"], errors="coerce")  # a numeric answer column, NaN in it
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path)
    return path, str(frame.at[index, "id"])


def _broken_image(good):
    image = pd.read_parquet(good).at[0, "image"]
    return {"bytes": image["bytes"][: len(image["bytes"]) // 3], "path": None}  # a truncated PNG


@pytest.mark.parametrize("reader", ["training", "sft"])
@pytest.mark.parametrize("case", ["undecodable image", "null answer", "NaN answer"])
def test_bad_row_names_file_and_id(good, tmp_path, reader, case):
    change = {"undecodable image": {"image": _broken_image(good)}, "null answer": {"answer": None},
              "NaN answer": {"answer": math.nan}}[case]
    path, row_id = _with_row(good, tmp_path, 2, **change)
    with pytest.raises(BadRowError) as caught:
        READERS[reader](path)
    message = str(caught.value)
    assert str(path) in message and repr(row_id) in message
    assert ("undecodable image" if case == "undecodable image" else "no answer") in message


def test_find_bad_rows_decodes_every_image(good, tmp_path):
    path, row_id = _with_row(good, tmp_path, 1, image=_broken_image(good))
    bad = find_bad_rows(read_parquet(path))
    assert [(b.index, b.row_id) for b in bad] == [(1, row_id)]
    assert bad[0].reason.startswith("undecodable image")
    assert find_bad_rows(read_parquet(good)) == []


def test_undecodable_image_is_skipped_and_counted_under_skip_bad_rows(good, tmp_path, tiny_model_factory):
    from kawhi.eval.runner import EvalSettings, evaluate

    path, row_id = _with_row(good, tmp_path, 1, image=_broken_image(good))
    settings = EvalSettings.from_dict({"benchmark": "shapes_count", "batch_size": 4, "max_new_tokens": 4,
                                       "seed": 0, "limit": 2})
    with pytest.raises(BadRowError, match=rf"'{row_id}' \(undecodable image"):
        evaluate(tiny_model_factory("qwen2_5_vl"), path, tmp_path / "r.json", settings)
    skipping = EvalSettings.from_dict({**settings.to_dict(), "skip_bad_rows": True})
    result = evaluate(tiny_model_factory("qwen2_5_vl"), path, tmp_path / "r.json", skipping)
    assert result["n_skipped"] == 1 and result["skipped_ids"] == [row_id]


def test_prepare_benchmark_skips_and_counts_an_undecodable_image(tmp_path):
    import io

    import datasets
    from PIL import Image

    from kawhi.data.benchmarks import prepare_benchmark

    buf = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 30, 30)).save(buf, format="PNG")
    png = buf.getvalue()
    rows = [{"image": {"bytes": png, "path": None}, "query": f"q{i}", "label": [str(i)], "human_or_machine": 0}
            for i in range(3)]
    rows[1]["image"] = {"bytes": png[: len(png) // 3], "path": None}
    source = tmp_path / "chartqa" / "test.parquet"
    source.parent.mkdir()
    datasets.Dataset.from_list(rows).cast_column("image", datasets.Image()).to_parquet(str(source))
    with pytest.raises(BadRowError, match=r"row id '1' has undecodable image"):
        prepare_benchmark("chartqa", tmp_path / "o.parquet", source=str(source))
    report = prepare_benchmark("chartqa", tmp_path / "o.parquet", source=str(source), skip_bad_rows=True)
    assert (report.n_rows, report.n_skipped, report.skipped_ids) == (2, 1, ["1"])
