"""Wrong configs a hostile but fair user writes: each is refused before any job, by the one check both
the command line and the Snakefile run (kawhi.config.validate_config), with the key it is about."""

import copy
import subprocess
import sys

import pytest
import yaml

from kawhi.config import ConfigError, load_config, train_settings


@pytest.fixture(scope="module")
def raw(repo_root):
    return yaml.safe_load((repo_root / "config" / "config.yaml").read_text())


def _without_models(c):
    del c["models"]


def _models(names):
    def edit(c):
        c["models"] = {n: {"arch": "qwen2_5_vl", "source": "tiny"} for n in names}
    return edit


def _set(*path_value):
    *path, value = path_value

    def edit(c):
        holder = c
        for part in path[:-1]:
            holder = holder.setdefault(part, {})
        holder[path[-1]] = value
    return edit


BAD = {
    "no models": (_without_models, "models"),
    "empty grid.algorithms": (_set("grid", "algorithms", []), "grid.algorithms"),
    "batch not divided by num_generations": (_set("training", "num_generations", 3), "training.num_generations"),
    "model name with a space": (_models(["my model"]), "'my model'"),
    "model name with a slash": (_models(["Qwen/Qwen2.5-VL-7B"]), "'Qwen/Qwen2.5-VL-7B'"),
    "empty train_data.suites": (_set("train_data", "suites", []), "train_data.suites"),
    "empty math_benchmarks": (_set("math_benchmarks", []), "math_benchmarks"),
    "layers out of range": (_set("kawhi", "layers", [0, 99]), "kawhi.layers"),
    "variant layers out of range": (_set("variants", "kawhi", {"layers": [-3]}), "variants.kawhi.layers"),
    "empty delimiter in a variant": (_set("variants", "kawhi", {"delimiter": ""}), "variants.kawhi.delimiter"),
    "save_steps > max_steps": (_set("training", "save_steps", 51), "training.save_steps"),
    "sft.suites naming a benchmark": (_set("sft", "suites", ["mathvista"]), "sft.suites"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_is_refused_by_name(raw, tmp_path, case):
    edit, key = BAD[case]
    config = copy.deepcopy(raw)
    edit(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert key in str(caught.value)
    assert str(path) in str(caught.value)


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("seed: 0\nmodels:\n  tiny: {arch: qwen2_5_vl\ntraining:\n  max_steps: 3\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: YAML syntax error at line \d+"):
        load_config(path)


def test_empty_config_names_the_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match=r"empty\.yaml is empty"):
        load_config(path)


def test_scientific_notation_is_a_number(raw, tmp_path):
    config = copy.deepcopy(raw)
    config["training"].pop("learning_rate", None)
    text = yaml.safe_dump(config).replace("training:\n", "training:\n  learning_rate: 1e-4\n", 1)
    path = tmp_path / "sci.yaml"
    path.write_text(text)
    assert yaml.safe_load(text)["training"]["learning_rate"] == "1e-4"  # YAML 1.1 reads a string
    config = load_config(path, {"variants": {"kawhi": {"tau": "2e-1"}}})
    assert config["training"]["learning_rate"] == pytest.approx(1e-4)
    assert train_settings(config, "qwen25vl-tiny", "grpo", "kawhi")["kawhi"]["tau"] == pytest.approx(0.2)
    with pytest.raises(ConfigError, match="max_steps"):
        load_config(path, {"training": {"max_steps": "2.5"}})  # an integer key takes integral values only


def test_set_typo_is_a_short_message(repo_root, monkeypatch, capsys):
    from kawhi.cli import main

    monkeypatch.chdir(repo_root)
    rc = main(["train", "--model", "m", "--algo", "grpo", "--variant", "kawhi", "--data", "d.parquet",
               "--out", "o", "--set", "trainin.max_steps=3"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "trainin" in err and "Traceback" not in err and len(err.splitlines()) <= 3


def test_snakefile_runs_the_cross_key_checks(raw, repo_root, tmp_path):
    config = copy.deepcopy(raw)
    config["training"]["num_generations"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(path)],
                          cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "training.num_generations" in done.stdout + done.stderr and "rule train" in done.stdout + done.stderr


def test_check_config_names_the_line_snakemake_cannot(repo_root, tmp_path, capsys):
    from kawhi.cli import main

    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("training:\n  max_steps: 40\n  save_steps: [oops\n")
    assert main(["check-config", str(repo_root / "config" / "config.yaml"), str(overlay)]) == 2
    assert f"{overlay}: YAML syntax error at line" in capsys.readouterr().err
    overlay.write_text("training:\n  max_steps: 40\n")
    assert main(["check-config", str(repo_root / "config" / "config.yaml"), str(overlay)]) == 0
    assert main(["check-config", str(repo_root / "config" / "config.yaml"), str(overlay),
                 "--set", "training.save_steps=41"]) == 2
    assert "training.save_steps" in capsys.readouterr().err
