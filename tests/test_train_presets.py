"""Algorithm presets -> trl.GRPOConfig, and the GPU launch line (built and checked on CPU)."""

import copy
import sys

import pytest

from kawhi.config import load_config, train_settings, validate_config
from kawhi.train.launch import LaunchError, build_launch_command, check_launch
from kawhi.train.presets import GPUUnavailableError, build_grpo_config, check_device_settings, grpo_config_kwargs


@pytest.fixture(scope="module")
def config(repo_root):
    return load_config(repo_root / "config" / "config.yaml")


def _settings(config, algo, variant="baseline", **training):
    s = train_settings(config, "qwen25vl-tiny", algo, variant)
    s["training"].update(training)
    return s


def test_grpo_preset(config, tmp_path):
    kw = grpo_config_kwargs(_settings(config, "grpo"), tmp_path)
    assert kw["loss_type"] == "grpo" and kw["importance_sampling_level"] == "token"
    assert kw["epsilon"] == 0.2 and kw["epsilon_high"] == 0.2 and kw["beta"] == 0.0
    assert "dynamic_sampling" not in kw and "overlong_punishment" not in kw
    assert kw["save_steps"] == config["training"]["save_steps"] and kw["max_steps"] == config["training"]["max_steps"]


def test_dapo_preset(config, tmp_path):
    s = _settings(config, "dapo")
    kw = grpo_config_kwargs(s, tmp_path)
    assert kw["loss_type"] == "dapo" and kw["epsilon_high"] == 0.28
    assert s["algorithm"]["dynamic_sampling"] and s["algorithm"]["overlong_punishment"]


def test_gspo_preset(config, tmp_path):
    cfg = build_grpo_config(_settings(config, "gspo"), tmp_path, reward_weights=[1.0])
    assert cfg.importance_sampling_level == "sequence"
    assert cfg.epsilon == 3e-4 and cfg.epsilon_high == 4e-4
    assert cfg.reward_weights == [1.0] and cfg.report_to in ([], "none", ["none"])


def test_every_key_is_config(config, tmp_path):
    config = copy.deepcopy(config)
    config["algorithms"]["dapo"]["epsilon_high"] = 0.3
    kw = grpo_config_kwargs(_settings(config, "dapo", learning_rate=5e-5, temperature=0.7,
                                      lr_scheduler_type="cosine", gradient_checkpointing=True), tmp_path)
    assert kw["epsilon_high"] == 0.3 and kw["temperature"] == 0.7
    assert kw["lr_scheduler_type"] == "cosine" and kw["gradient_checkpointing"] is True
    embedded = grpo_config_kwargs(_settings(config, "grpo"), tmp_path)  # config/config.yaml's choices
    assert embedded["lr_scheduler_type"] == "constant" and embedded["gradient_checkpointing"] is False
    del config["training"]["lr_scheduler_type"], config["training"]["gradient_checkpointing"]
    defaults = grpo_config_kwargs(_settings(validate_config(config), "grpo"), tmp_path)
    assert defaults["lr_scheduler_type"] == "linear" and defaults["gradient_checkpointing"] is True  # schema (TRL's)


def test_gpu_only_settings_fail_clearly_on_cpu():
    with pytest.raises(GPUUnavailableError, match="training.bf16"):
        check_device_settings({"bf16": True}, cuda_available=False)
    with pytest.raises(GPUUnavailableError, match="training.use_vllm"):
        check_device_settings({"use_vllm": True}, cuda_available=False)
    check_device_settings({"bf16": True, "use_vllm": True}, cuda_available=True)


def test_vllm_keys_passed_on_gpu_profile(config, tmp_path):
    kw = grpo_config_kwargs(_settings(config, "grpo", use_vllm=True, bf16=True, vllm_gpu_memory_utilization=0.4),
                            tmp_path)
    assert kw["use_vllm"] and kw["bf16"] and kw["vllm_mode"] == "colocate"
    assert kw["vllm_gpu_memory_utilization"] == 0.4


def test_launch_command_multi_gpu():
    argv = ["--model", "m", "--algo", "grpo", "--variant", "kawhi", "--data", "d.parquet", "--out", "o"]
    cmd = build_launch_command(argv, 8, "deepspeed_zero3")
    assert cmd[:6] == ["accelerate", "launch", "--config_file", "config/accelerate/zero3.yaml",
                       "--num_processes", "8"]
    assert cmd[6:9] == ["-m", "kawhi.cli", "train"] and cmd[9:] == argv
    assert build_launch_command(argv, 4, "fsdp")[3] == "config/accelerate/fsdp.yaml"


def test_launch_command_single_device():
    argv = ["--model", "m"]
    assert build_launch_command(argv, 1, "fsdp") == [sys.executable, "-m", "kawhi.cli", "train", "--model", "m"]
    assert build_launch_command(argv, 8, "none")[:4] == [sys.executable, "-m", "kawhi.cli", "train"]
    with pytest.raises(LaunchError, match="training.distributed"):
        build_launch_command(argv, 2, "megatron")


def test_launch_check_without_gpus(tmp_path):
    cmd = build_launch_command(["--model", "m"], 2, "fsdp")
    with pytest.raises(LaunchError, match="wants 2 GPUs but 0"):
        check_launch(cmd, n_gpus_available=0, repo_root=tmp_path)
    check_launch([sys.executable, "-m", "kawhi.cli", "train"], n_gpus_available=0)  # single device: nothing to check


def test_report_to_reaches_trl_and_defaults_to_none(config, tmp_path, repo_root):
    from kawhi.config import ConfigError

    assert config["training"]["report_to"] == "none"  # the schema's default
    assert grpo_config_kwargs(_settings(config, "grpo"), tmp_path)["report_to"] == "none"
    cfg = build_grpo_config(_settings(config, "grpo", report_to="tensorboard"), tmp_path, cuda_available=False)
    assert cfg.report_to == ["tensorboard"]
    chosen = load_config(repo_root / "config" / "config.yaml", {"training": {"report_to": "trackio"}})
    assert chosen["training"]["report_to"] == "trackio"
    with pytest.raises(ConfigError, match="report_to"):
        load_config(repo_root / "config" / "config.yaml", {"training": {"report_to": "mlflow"}})
