"""validate_config fills the schema's defaults with jsonschema alone (no Snakemake), naming a bad key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kawhi.config import ConfigError, validate_config


def test_defaults_are_filled_nested_and_not_shared():
    config = validate_config({"models": {"m-a": {"arch": "qwen2_5_vl"}}, "grid": {"seeds": [3]}})
    assert config["grid"]["seeds"] == [3]  # given: kept
    assert config["grid"]["variants"] == ["baseline", "kawhi"]  # a default inside a given block
    assert config["models"]["m-a"]["source"] == "tiny"  # a default inside an additionalProperties entry
    assert config["report"]["resources"]["threads"] >= 1  # a default inside a default
    other = validate_config({"models": {"m-b": {"arch": "qwen2_5_vl"}}})
    other["grid"]["variants"].append("x")
    assert config["grid"]["variants"] == ["baseline", "kawhi"]  # each config gets its own copy


def test_a_bad_key_is_named():
    with pytest.raises(ConfigError, match=r"invalid config at 'grid\.seeds\.0'"):
        validate_config({"models": {"m-a": {"arch": "qwen2_5_vl"}}, "grid": {"seeds": ["zero"]}})


def test_validation_does_not_import_snakemake(repo_root):
    code = ("import sys; from kawhi.config import load_config; load_config('config/config.yaml');"
            "assert 'snakemake' not in sys.modules, 'snakemake imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(repo_root / "workflow"), "PATH": ""})
    assert proc.returncode == 0, proc.stderr
