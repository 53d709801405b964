"""benchmarks/kawhi_overhead.py times the embedded config's own training step, read from the config file."""

import importlib.util
import sys

import pytest


@pytest.fixture(scope="module")
def overhead(repo_root):
    spec = importlib.util.spec_from_file_location("kawhi_overhead", repo_root / "benchmarks" / "kawhi_overhead.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_tiny_step_follows_the_config(overhead, repo_root):
    from kawhi.config import load_config

    config = load_config(repo_root / "config" / "config.yaml",
                         {"training": {"per_device_train_batch_size": 12, "num_generations": 3,
                                       "max_completion_length": 20},
                          "kawhi": {"metric": "kk"}, "synthetic": {"image_size": 96}})
    step = overhead.tiny_step(config)
    assert (step.rows, step.generations, step.completion_tokens, step.image_size) == (12, 3, 20, 96)
    assert step.settings.metric == "kk" and step.settings.enabled
    first_model = next(iter(config["models"].values()))
    assert step.arch == first_model["arch"] and step.sizes["patch_size"] > 0
