"""`kawhi evaluate` end to end through lm-eval on a tiny model, and `kawhi score` on what it logged."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from kawhi.cli import main as kawhi_main
from kawhi.data.prompts import build_messages
from kawhi.eval.runner import BackendUnavailableError, EvalSettings, check_backend, evaluate, samples_path
from kawhi.eval.tasks import BadRowError

SUITE = "shapes_count"
N_ROWS = 6
MAX_NEW_TOKENS = 6


def settings_for(**overrides) -> EvalSettings:
    return EvalSettings.from_dict({"benchmark": SUITE, "batch_size": 4, "max_new_tokens": MAX_NEW_TOKENS,
                                   "seed": 0, **overrides})


@pytest.fixture(scope="module")
def suite_file(suite_factory) -> Path:
    return suite_factory(SUITE, "test", N_ROWS, 0)


@pytest.fixture(scope="module")
def model_dir(tiny_model_factory) -> Path:
    return tiny_model_factory("qwen2_5_vl")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, model_dir, suite_file):
    """One lm-eval run through the command line (as the Snakemake rule calls it)."""
    out = tmp_path_factory.mktemp("eval") / f"{SUITE}.json"
    settings = json.dumps(settings_for().to_dict())
    rc = kawhi_main(["evaluate", "--model", str(model_dir), "--benchmark", SUITE, "--data", str(suite_file),
                     "--out", str(out), "--model-name", "tiny", "--checkpoint", "base", "--settings", settings])
    assert rc == 0
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_evaluate_writes_the_result_contract(evaluated):
    result = json.loads(evaluated.read_text())
    for key in ("benchmark", "model", "checkpoint", "metrics", "primary", "n", "n_skipped", "scorer",
                "judge", "provenance"):
        assert key in result, key
    assert result["benchmark"] == SUITE and result["model"] == "tiny" and result["checkpoint"] == "base"
    assert result["n"] == N_ROWS and result["n_skipped"] == 0
    assert result["primary"] in result["metrics"]
    assert all(0.0 <= v <= 100.0 for v in result["metrics"].values())
    assert result["provenance"]["config_hash"]


def test_samples_log_has_the_row_prompt_response_extraction_and_score(evaluated, suite_file):
    lines = read_jsonl(samples_path(evaluated))
    table = datasets.load_dataset("parquet", data_files={"test": str(suite_file)})["test"]
    assert [line["id"] for line in lines] == table["id"]
    for line in lines:
        assert "image" not in line
        assert {"question", "answer", "prompt", "response", "extracted", "score"} <= set(line)
        assert isinstance(line["response"], str) and 0.0 <= line["score"] <= 1.0


def test_the_prompt_is_build_messages_through_the_chat_template(evaluated, suite_file, model_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    row = read_jsonl(samples_path(evaluated))[0]
    messages = build_messages(row["question"], row.get("options") or None, n_images=1, yes_no=False)
    expected = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert row["prompt"] == expected


def test_rescoring_the_log_gives_identical_metrics(evaluated, tmp_path, capsys):
    result = json.loads(evaluated.read_text())
    out = tmp_path / "rescored.json"
    capsys.readouterr()
    assert kawhi_main(["score", "--benchmark", SUITE, "--predictions", str(samples_path(evaluated)),
                       "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    rescored = json.loads(out.read_text())
    assert rescored["metrics"] == result["metrics"] == printed["metrics"]
    assert rescored["primary"] == result["primary"] and rescored["n"] == result["n"]


def test_rescoring_needs_only_the_original_columns_and_response(evaluated, tmp_path):
    """Lines as a user would write them: no prompt, extraction or score fields."""
    result = json.loads(evaluated.read_text())
    bare = tmp_path / "bare.jsonl"
    keep = lambda line: {k: v for k, v in line.items() if k not in ("prompt", "extracted", "score", "scoring")}
    bare.write_text("".join(json.dumps(keep(line)) + "\n" for line in read_jsonl(samples_path(evaluated))))
    from kawhi.eval.rescore import score_file

    assert score_file(SUITE, bare)["metrics"] == result["metrics"]


def _with_bad_row(suite_file: Path, out: Path, bad_index: int, column: str) -> tuple[Path, str]:
    table = datasets.load_dataset("parquet", data_files={"test": str(suite_file)})["test"]
    bad_id = table[bad_index]["id"]
    table = table.map(lambda row, i: {column: None} if i == bad_index else {}, with_indices=True)
    table.to_parquet(str(out))
    return out, bad_id


def test_a_row_without_image_is_an_error_naming_its_id(tmp_path, suite_file, model_dir):
    data, bad_id = _with_bad_row(suite_file, tmp_path / "bad.parquet", 2, "image")
    with pytest.raises(BadRowError, match=rf"'{bad_id}' \(no image\)"):
        evaluate(model_dir, data, tmp_path / "r.json", settings_for())
    assert not (tmp_path / "r.json").exists()


def test_a_row_without_answer_is_an_error_naming_its_id(tmp_path, suite_file, model_dir):
    data, bad_id = _with_bad_row(suite_file, tmp_path / "bad.parquet", 0, "answer")
    with pytest.raises(BadRowError, match=rf"'{bad_id}' \(no answer\)"):
        evaluate(model_dir, data, tmp_path / "r.json", settings_for())


def test_skip_bad_rows_counts_the_skip(tmp_path, suite_file, model_dir):
    data, bad_id = _with_bad_row(suite_file, tmp_path / "bad.parquet", 1, "image")
    result = evaluate(model_dir, data, tmp_path / "r.json", settings_for(skip_bad_rows=True, limit=3))
    assert result["n_skipped"] == 1 and result["skipped_ids"] == [bad_id]
    assert result["n"] == 3
    assert bad_id not in [line["id"] for line in read_jsonl(samples_path(tmp_path / "r.json"))]


def test_vllm_backend_fails_at_once_without_gpu_and_vllm(tmp_path, suite_file, model_dir):
    import importlib.util

    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM and a GPU are available here")
    with pytest.raises(BackendUnavailableError, match="vllm"):
        check_backend("vllm")
    with pytest.raises(BackendUnavailableError, match="--backend hf"):
        kawhi_main(["evaluate", "--model", str(model_dir), "--benchmark", SUITE, "--data", str(suite_file),
                    "--out", str(tmp_path / "v.json"), "--backend", "vllm",
                    "--settings", json.dumps(settings_for().to_dict())])
    assert not (tmp_path / "v.json").exists()


def test_mme_style_suite_rescores_identically_including_pair_metrics(tmp_path, suite_factory, model_dir):
    """A yes/no suite: the prompt asks for yes/no, and acc+ (over image pairs) survives re-scoring."""
    from kawhi.eval.rescore import score_file

    data = suite_factory("mme_synth", "test", 4, 0)
    out = tmp_path / "mme_synth.json"
    result = evaluate(model_dir, data, out, settings_for(benchmark="mme_synth"))
    lines = read_jsonl(samples_path(out))
    assert result["n"] == len(lines) == 8  # two questions per picture
    assert all("Please answer yes or no." in line["prompt"] for line in lines)
    assert len(result["metrics"]) > 1
    assert score_file("mme_synth", samples_path(out))["metrics"] == result["metrics"]


def test_a_benchmark_column_named_like_a_log_field_is_refused_before_loading(tmp_path, suite_file, model_dir):
    table = datasets.load_dataset("parquet", data_files={"test": str(suite_file)})["test"]
    table = table.add_column("response", ["x"] * len(table))
    table.to_parquet(str(tmp_path / "clash.parquet"))
    with pytest.raises(BadRowError, match="'response'"):
        evaluate(model_dir, tmp_path / "clash.parquet", tmp_path / "r.json", settings_for())


# ---- pass@k: k sampled completions per row (eval.num_samples, eval.temperature) -------------------------

K = 4


@pytest.fixture(scope="module")
def sampled(tmp_path_factory, model_dir, suite_file):
    out = tmp_path_factory.mktemp("eval-k") / f"{SUITE}.json"
    settings = json.dumps(settings_for(num_samples=K, temperature=1.0).to_dict())
    rc = kawhi_main(["evaluate", "--model", str(model_dir), "--benchmark", SUITE, "--data", str(suite_file),
                     "--out", str(out), "--settings", settings])
    assert rc == 0
    return out


def test_pass_at_1_is_the_mean_over_k_draws_and_pass_at_k_the_best_of_them(sampled):
    result = json.loads(sampled.read_text())
    lines = read_jsonl(samples_path(sampled))
    assert result["num_samples"] == K and result["temperature"] == 1.0
    assert len(lines) == N_ROWS and all(len(line["samples"]) == K for line in lines)
    draws = [[float(d["score"]) for d in line["samples"]] for line in lines]
    for line, scores in zip(lines, draws):
        assert line["score"] == pytest.approx(sum(scores) / K)
    primary = result["primary"]
    assert result["metrics"][primary] == pytest.approx(100 * sum(map(sum, draws)) / (K * N_ROWS))
    assert result["metrics"][primary] == pytest.approx(sum(result["pass_at_1_per_draw"]) / K)
    assert result["pass_at_k"]["k"] == K
    assert result["pass_at_k"]["primary"] == pytest.approx(100 * sum(max(s) for s in draws) / N_ROWS)
    assert result["pass_at_k"]["primary"] >= result["metrics"][primary]
    # lm-eval's own per-row mean is the same pass@1
    assert result["lm_eval"]["mean_score"] == pytest.approx(result["metrics"][primary])


def test_the_k_draws_are_samples_not_copies(sampled):
    lines = read_jsonl(samples_path(sampled))
    assert any(len({d["response"] for d in line["samples"]}) > 1 for line in lines)


def test_several_samples_need_a_temperature():
    with pytest.raises(ValueError, match="num_samples = 4 needs eval.temperature > 0"):
        settings_for(num_samples=4)
    with pytest.raises(ValueError, match="at least 1"):
        settings_for(num_samples=0, temperature=1.0)


# ---- one process, several benchmarks (one evaluation job per checkpoint, rules/eval.smk) ----------------


def test_several_benchmarks_in_one_process_write_what_one_process_each_writes(tmp_path, suite_file, suite_factory,
                                                                              model_dir):
    """Sampled decoding, so the test fails if the second benchmark inherited the first one's random state."""
    mme = suite_factory("mme_synth", "test", 3, 0)
    settings = json.dumps({k: v for k, v in settings_for(num_samples=2, temperature=1.0).to_dict().items()
                           if k != "benchmark"})
    together, alone = tmp_path / "together", tmp_path / "alone"
    together.mkdir(), alone.mkdir()
    benches = [(SUITE, suite_file), ("mme_synth", mme)]
    assert kawhi_main(["evaluate", "--model", str(model_dir), "--benchmark", *[b for b, _ in benches],
                       "--data", *[str(d) for _, d in benches],
                       "--out", *[str(together / f"{b}.json") for b, _ in benches], "--settings", settings]) == 0
    for bench, data in reversed(benches):  # the other order: each alone in its own call
        assert kawhi_main(["evaluate", "--model", str(model_dir), "--benchmark", bench, "--data", str(data),
                           "--out", str(alone / f"{bench}.json"), "--settings", settings]) == 0
    for bench, _ in benches:
        assert samples_path(together / f"{bench}.json").read_text() == samples_path(alone / f"{bench}.json").read_text()
        a, b = (json.loads((d / f"{bench}.json").read_text()) for d in (together, alone))
        assert a["metrics"] == b["metrics"] and a["benchmark"] == b["benchmark"] == bench
        assert a["provenance"]["config_hash"] == b["provenance"]["config_hash"]


def test_several_benchmarks_need_one_data_file_and_one_output_each(tmp_path, suite_file, model_dir):
    with pytest.raises(SystemExit, match="2 benchmark\\(s\\), 1 data file\\(s\\), 2 output\\(s\\)"):
        kawhi_main(["evaluate", "--model", str(model_dir), "--benchmark", SUITE, "mme_synth",
                    "--data", str(suite_file), "--out", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                    "--settings", json.dumps(settings_for().to_dict())])


def test_a_bad_row_in_a_later_benchmark_is_refused_before_the_model_loads(tmp_path, suite_file, model_dir,
                                                                           monkeypatch):
    import kawhi.eval.runner as runner

    data, bad_id = _with_bad_row(suite_file, tmp_path / "bad.parquet", 2, "answer")

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before every benchmark was checked")

    monkeypatch.setattr(runner, "build_lm", no_model)
    with pytest.raises(BadRowError, match=rf"bad.parquet.*'{bad_id}' \(no answer\)"):
        runner.evaluate_benchmarks(model_dir, [(suite_file, tmp_path / "a.json", settings_for()),
                                               (data, tmp_path / "b.json", settings_for())])
    assert not (tmp_path / "a.json").exists()
