"""benchmarks/kawhi_overhead.py times the embedded config's own training step, read from the config file."""

import importlib.util
import sys

import pytest
import yaml


@pytest.fixture(scope="module")
def overhead(repo_root):
    spec = importlib.util.spec_from_file_location("kawhi_overhead", repo_root / "benchmarks" / "kawhi_overhead.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _config_with(repo_root, tmp_path, training: dict, kawhi: dict | None = None, image_size: int | None = None):
    config = yaml.safe_load((repo_root / "config" / "config.yaml").read_text())
    config["training"].update(training)
    if kawhi:
        config["kawhi"].update(kawhi)
    if image_size:
        config["synthetic"]["image_size"] = image_size
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_tiny_step_follows_the_config(overhead, repo_root, tmp_path):
    path = _config_with(repo_root, tmp_path, {"per_device_train_batch_size": 12, "num_generations": 3,
                                              "max_completion_length": 20}, {"metric": "kk"}, image_size=96)
    step = overhead.tiny_step(str(path))
    assert (step.rows, step.generations, step.completion_tokens, step.image_size) == (12, 3, 20, 96)
    assert step.settings.metric == "kk" and step.settings.enabled
    first_model = next(iter(yaml.safe_load(path.read_text())["models"].values()))
    assert step.arch == first_model["arch"] and step.sizes["patch_size"] > 0
