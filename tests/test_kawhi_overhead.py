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


def test_paired_ratio_cancels_drift_and_gives_an_interval(overhead):
    """Each run is divided by (a) of its own round: a machine that slows down over the benchmark moves both."""
    import numpy as np

    rng = np.random.default_rng(0)
    baseline = list(np.linspace(0.18, 0.26, 30))  # the machine drifts by 40 % over the rounds
    noise = 1 + rng.normal(0, 0.004, 30)
    times = [a * 1.04 * n for a, n in zip(baseline, noise)]
    median, (low, high) = overhead.paired_ratio(times, baseline)
    assert abs(median - 1.04) < 0.004
    assert low <= median <= high and high - low < 0.01
    steady, interval = overhead.paired_ratio([t * 1.1 for t in baseline], baseline)
    assert steady == pytest.approx(1.1) and interval is None  # no spread, no interval
    short, interval = overhead.paired_ratio(times[:4], baseline[:4])
    assert interval is None and short > 1


def test_benchmark_restarts_itself_under_the_jobs_malloc_thresholds(overhead, monkeypatch):
    from kawhi.malloc import set_malloc_tunables

    calls = []
    monkeypatch.setattr(overhead.os, "execve", lambda path, argv, env: calls.append(env))
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    overhead.run_under_job_malloc()
    assert len(calls) == 1 and calls[0]["GLIBC_TUNABLES"] == set_malloc_tunables({})
    monkeypatch.setenv("GLIBC_TUNABLES", calls[0]["GLIBC_TUNABLES"])
    overhead.run_under_job_malloc()  # already under them: no second start
    assert len(calls) == 1
