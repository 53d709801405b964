"""The config is validated before any job starts, and a bad key is named in the error."""

import pytest

from kawhi.config import ConfigError, kawhi_settings, load_config, train_settings


@pytest.fixture()
def config_path(repo_root):
    return repo_root / "config" / "config.yaml"


def test_default_config_fills_method_defaults(config_path):
    config = load_config(config_path)
    k = kawhi_settings(config, "kawhi")
    assert (k.tau, k.lam, k.w_min, k.w_max, k.delimiter, k.metric, k.regions) == (0.1, 0.1, 0.1, 1.0, "\n\n", "kq",
                                                                                 "sguf")
    assert (k.layers, k.heads, k.rotary, k.granularity, k.normalize) == ((-1,), "critical", "post", "paragraph", "none")
    s = k.sguf
    assert (s.sigma, s.delta_s, s.delta_l, s.beta, s.skip_ratio) == (1.0, 0.5, 30.0, 0.1, 0.7)  # Appendix A
    assert kawhi_settings(config, "baseline").enabled is False
    assert kawhi_settings(config, "kawhi-random").regions == "random"


@pytest.mark.parametrize(
    "override, key",
    [
        ({"algorithms": {"ppo": {}}}, "algorithms"),
        ({"training": {"learning_rate": -1.0}}, "learning_rate"),
        ({"models": {"nameless": {"source": "tiny"}}}, "arch"),
        ({"math_benchmarks": ["not_a_benchmark"]}, "math_benchmarks"),
        ({"grid": {"algorithms": ["grpo", "ppo"]}}, "grid"),
    ],
)
def test_bad_config_is_refused_naming_the_key(config_path, override, key):
    with pytest.raises(ConfigError, match=key):
        load_config(config_path, override)


def test_train_settings_differ_only_for_their_variant(config_path):
    config = load_config(config_path, {"variants": {"kawhi-kk": {"lam": 0.3}}})
    base = load_config(config_path)
    assert train_settings(config, "qwen25vl-tiny", "grpo", "kawhi") == train_settings(base, "qwen25vl-tiny", "grpo", "kawhi")
    assert train_settings(config, "qwen25vl-tiny", "grpo", "kawhi-kk") != train_settings(base, "qwen25vl-tiny", "grpo", "kawhi-kk")


def test_long_warmstart_overlay_changes_only_the_sft_budget(config_path):
    import yaml

    from kawhi.config import sft_settings

    overlay = yaml.safe_load((config_path.parent / "long-warmstart.yaml").read_text())
    base, long = load_config(config_path), load_config(config_path, overlay)
    for model in base["models"]:
        before, after = sft_settings(base, model), sft_settings(long, model)
        assert after["max_steps"] > before["max_steps"]
        assert {k: v for k, v in after.items() if k != "max_steps"} == \
               {k: v for k, v in before.items() if k != "max_steps"}
    assert {k: v for k, v in long.items() if k != "sft"} == {k: v for k, v in base.items() if k != "sft"}
