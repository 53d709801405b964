"""Table 1's fine-grained reward baselines: each trains on both tiny architectures, and each defining
mechanism holds on a hand-built batch (FT-RL's entropy mask, VPPO's dependency and filter, StepRAR)."""

import json
import math

import pytest
import torch

from kawhi.config import ConfigError, load_config, train_settings
from kawhi.data.key_steps import key_steps_from_solution, normalise_key_steps, parse_key_elements, prepare_key_steps
from kawhi.train.baselines.step_grpo import StepGRPOSettings, is_valid, step_match, step_reward_functions
from kawhi.train.baselines.vppo import advantage_scaling, blacken_patches, top_share_mask, visual_dependency
from kawhi.train.run import train_run

TINY = {"max_steps": 1, "per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 10,
        "save_steps": 1}


@pytest.fixture(scope="module")
def config(repo_root):
    return load_config(repo_root / "config" / "config.yaml")


# ---- each baseline trains -------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("algo", ["ft-rl", "vppo", "step-grpo"])
def test_baseline_trains(arch, algo, config, tiny_model_factory, suite_factory, tmp_path):
    settings = train_settings(config, "qwen25vl-tiny", algo, "baseline")
    settings["training"].update(TINY)
    settings["algorithm"]["dynamic_sampling"] = False  # one generation round: the test is about the mechanism
    data = suite_factory("shapes_count", "train", n=4)
    record = train_run(tiny_model_factory(arch), settings, None, [data], tmp_path)
    assert record["steps"] == 1 and record["algorithm"] == algo
    line = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    if algo == "vppo":
        assert 0.0 <= line["vppo/dependency_mean"] <= 10.0
        assert line["vppo/token_fraction"] >= 0.4 - 1e-6  # ceil(0.4 x length) per response
        assert "vppo/entropy_penalty" in line
    if algo == "step-grpo":
        assert "rewards/step_validity/mean" in line and "rewards/accuracy/mean" in line
    if algo == "ft-rl":
        assert "vppo/dependency_mean" not in line and "rewards/step_validity/mean" not in line


def test_vppo_dependency_is_zero_when_nothing_is_blackened(config, tiny_model_factory, suite_factory, tmp_path):
    settings = train_settings(config, "qwen25vl-tiny", "vppo", "baseline")
    settings["training"].update(TINY)  # dynamic sampling stays on (VPPO's recipe): every round is weighted
    settings["algorithm"]["vppo"]["black_prob"] = 0.0  # the perturbed image is the real one
    train_run(tiny_model_factory("qwen2_5_vl"), settings, None, [suite_factory("shapes_count", "train", n=4)],
              tmp_path)
    line = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert line["vppo/dependency_mean"] == 0.0


# ---- FT-RL: TRL's own mask keeps exactly the tokens at or above the entropy quantile -------------------

def test_ft_rl_masks_the_tokens_below_the_entropy_quantile(config):
    from accelerate import Accelerator
    from trl import GRPOTrainer

    from kawhi.train.presets import grpo_config_kwargs

    quantile = train_settings(config, "qwen25vl-tiny", "ft-rl", "baseline")["algorithm"]["top_entropy_quantile"]
    assert quantile == 0.2 and grpo_config_kwargs(
        train_settings(config, "qwen25vl-tiny", "ft-rl", "baseline"), "/tmp/x")["top_entropy_quantile"] == 0.2
    entropies = torch.tensor([[float(v) for v in range(10)], [float(v) for v in range(10, 20)]])
    mask = torch.ones_like(entropies)
    mask[1, 5:] = 0  # padding: 15 valid tokens, entropies 0..9 and 10..14
    holder = type("T", (), {"accelerator": Accelerator(cpu=True)})()
    keep = GRPOTrainer.get_high_entropy_mask(holder, entropies, mask, 1 - quantile)
    threshold = torch.quantile(entropies[mask.bool()], 1 - quantile)
    expected = (entropies >= threshold) & mask.bool()
    assert torch.equal(keep, expected)
    assert int(keep.sum()) == 3  # the top 20 % of 15 valid tokens: 12, 13, 14
    assert not keep[0].any() and keep[1, 2:5].all() and not keep[1, 5:].any()


# ---- VPPO ---------------------------------------------------------------------------------------------

def test_vppo_dependency_zero_for_identical_images_and_positive_otherwise():
    logps = torch.log(torch.tensor([[0.5, 0.2, 0.9, 0.1], [0.3, 0.3, 0.3, 0.3]]))
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    assert torch.equal(visual_dependency(logps, logps.clone(), mask), torch.zeros(2, 4))
    other = logps.clone()
    other[0, 1] = math.log(0.05)
    other[1, 3] = math.log(0.9)  # padding: never counts
    dep = visual_dependency(logps, other, mask)
    d = math.log(0.05) - math.log(0.2)
    assert dep[0, 1].item() == pytest.approx(math.exp(d) - d - 1, rel=1e-5)
    assert dep[1, 3] == 0 and (dep >= 0).all()


@pytest.mark.parametrize("share", [0.2, 0.4, 1.0])
def test_vppo_filter_keeps_the_configured_share(share):
    torch.manual_seed(0)
    dep = torch.rand(3, 12)
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    keep = top_share_mask(dep, mask, share)
    for row in range(3):
        n = int(mask[row].sum())
        k = math.ceil(n * share)
        assert int(keep[row].sum()) == k and not keep[row][mask[row] == 0].any()
        kept, dropped = dep[row][keep[row]], dep[row][mask[row].bool() & ~keep[row]]
        assert dropped.numel() == 0 or kept.min() >= dropped.max()


def test_vppo_shaping_follows_dependency_and_averages_near_one():
    dep = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [4.0, 4.0]])
    factor = advantage_scaling(dep, torch.ones(4, 2), shaping_min=0.9)
    assert factor[0] == pytest.approx(0.9) and torch.all(factor[1:] > factor[:-1])
    assert factor.mean().item() == pytest.approx(1.0, abs=1e-5)  # min + (1 - min)/mu x mu
    assert torch.equal(advantage_scaling(torch.ones(3, 2), torch.ones(3, 2), 0.9), torch.ones(3))


def test_blacken_patches_probability_zero_and_one():
    pixels = torch.randn(6, 8)
    black = torch.full((8,), -1.5)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(blacken_patches(pixels, black, 0.0, g), pixels)
    assert torch.equal(blacken_patches(pixels, black, 1.0, g), black.expand(6, 8))


def test_vppo_black_row_is_the_processors_black_pixel(tiny_model_factory):
    from PIL import Image
    from transformers import AutoProcessor

    from kawhi.train.baselines.vppo import black_pixel_row

    for arch in ("qwen2_5_vl", "qwen3_vl"):
        processor = AutoProcessor.from_pretrained(tiny_model_factory(arch))
        real = processor.image_processor(images=[Image.new("RGB", (64, 64), (0, 0, 0))],
                                         return_tensors="pt")["pixel_values"]
        row = black_pixel_row(processor.image_processor, real)
        assert torch.allclose(real, row.expand_as(real))


# ---- Step-GRPO ----------------------------------------------------------------------------------------

KEY_STEPS = key_steps_from_solution("Cells: blue, red, red, blue.\n\n2 + 1 + 1 + 2 = 6.")


def test_steprar_scores_all_key_steps_above_none():
    assert KEY_STEPS == [["Cells: blue, red, red, blue"], ["2 + 1 + 1 + 2 = 6"]]
    full = "Cells: blue, red, red, blue.\n\n2 + 1 + 1 + 2 = 6.\n\n\\boxed{6}"
    half = "Cells: blue, red, red, blue.\n\nSo \\boxed{6}"
    none = "I think the answer is\n\n\\boxed{6}"
    assert step_match(full, KEY_STEPS) == 1.0 > step_match(half, KEY_STEPS) == 0.5 > step_match(none, KEY_STEPS) == 0
    accuracy, validity = step_reward_functions(StepGRPOSettings(), "\n\n")[0]
    scores = accuracy(prompts=[None] * 2, completions=[full, none], answer=["6", "6"], options=[[], []],
                      key_steps=[json.dumps(KEY_STEPS)] * 2)
    assert scores == [pytest.approx(1.1), 1.0]  # both correct; the key steps add 0.1 x matched share
    with pytest.raises(KeyError, match="key_steps"):
        accuracy(prompts=[None], completions=[full], answer=["6"], options=[[]])


def test_steprar_r1vl_format_matches_only_step_sections():
    text = ("### Image Description: cells blue red\n### Rationales: sum\n### Step 1: 2 + 1 + 1 + 2 = 6\n"
            "### The final answer is: 6")
    groups = [["2 + 1 + 1 + 2 = 6"], ["cells blue red"]]
    assert step_match(text, groups, "r1vl") == 0.5  # the description is no step (R1-VL's key_step_single)
    assert is_valid(text, "r1vl")
    assert not is_valid(text.replace("### Step 1:", "### Step 2:"), "r1vl")
    assert not is_valid(text.replace("### Rationales: sum\n", ""), "r1vl")


def test_steprvr_paragraph_format():
    assert is_valid("Cells: red.\n\nShapes: 1.\n\n\\boxed{1}")
    assert not is_valid("\\boxed{1}")  # incomplete: no reasoning step
    assert not is_valid("\\boxed{1}\n\nCells: red.")  # the answer must come last
    assert not is_valid("Cells: red.\n\nShapes: 1.")  # no answer


def test_key_steps_column_and_judge_extraction(suite_factory, tmp_path):
    import datasets

    ds = datasets.Dataset.from_parquet(str(suite_factory("shapes_arith", "train", n=3)))
    for row in ds:
        assert normalise_key_steps(row["key_steps"]) == key_steps_from_solution(row["solution"])
    reply = 'Key Elements:\nImage Description: ["red"]; Rationales: ["sum"]; Step 1: ["AB = 3", "x"], Step 2: ["x = 4"]'
    assert parse_key_elements(reply) == [["AB = 3"], ["x"], ["x = 4"]]

    hub = tmp_path / "hub.parquet"
    datasets.Dataset.from_dict({"question": ["Find x."], "answer": ["4"]}).to_parquet(str(hub))
    with pytest.raises(ValueError, match=r"no judge model is configured.*eval\.judge"):
        prepare_key_steps(hub, tmp_path / "out.parquet", None)
    assert not (tmp_path / "out.parquet").exists()
    prompts = []

    def judge(prompt):
        prompts.append(prompt)
        return "### Step 1: x = 4" if len(prompts) == 1 else reply

    assert prepare_key_steps(hub, tmp_path / "out.parquet", judge) == 1
    out = datasets.Dataset.from_parquet(str(tmp_path / "out.parquet"))
    assert normalise_key_steps(out[0]["key_steps"]) == [["AB = 3"], ["x"], ["x = 4"]]
    assert "The correct final answer is 4" in prompts[0] and "### Step 1: x = 4" in prompts[1]


# ---- config ---------------------------------------------------------------------------------------------

def test_baselines_config_keys(repo_root):
    config = load_config(repo_root / "config" / "config.yaml")
    assert config["grid"]["baselines"] == ["ft-rl", "vppo", "step-grpo"]
    grpo = train_settings(config, "qwen25vl-tiny", "grpo", "baseline")["algorithm"]
    assert not {"vppo", "step_grpo", "top_entropy_quantile"} & set(grpo)  # other runs' settings unchanged
    vppo = train_settings(config, "qwen25vl-tiny", "vppo", "baseline")["algorithm"]["vppo"]
    assert vppo == {"token_share": 0.4, "shaping_min": 0.9, "advantage_shaping": True, "entropy_penalty": 0.06,
                    "black_prob": 0.5, "kl_clamp": 10.0}
    import yaml

    from kawhi.config import validate_config

    raw = yaml.safe_load((repo_root / "config" / "config.yaml").read_text())
    raw["algorithms"]["step-grpo"] = {"loss_type": "grpo"}  # the baseline without its mechanism
    with pytest.raises(ConfigError, match=r"algorithms\.step-grpo\.step_grpo"):
        validate_config(raw)
    raw["grid"]["baselines"] = ["ft-rl"]  # not a baseline of the grid: a plain preset is fine
    assert validate_config(raw)["grid"]["baselines"] == ["ft-rl"]
    del raw["algorithms"]["ft-rl"]
    with pytest.raises(ConfigError, match=r"grid\.baselines.*ft-rl"):
        validate_config(raw)


def test_kawhi_train_accepts_every_configured_algorithm(repo_root):
    """The rules call `kawhi train --algo <name>` for every algorithm of the grid and every baseline."""
    from kawhi.cli import build_parser

    config = load_config(repo_root / "config" / "config.yaml")
    parser = build_parser()
    for algo in [*config["grid"]["algorithms"], *config["grid"]["baselines"]]:
        args = parser.parse_args(["train", "--model", "m", "--algo", algo, "--variant", "baseline",
                                  "--data", "d.parquet", "--out", "o"])
        assert args.algo == algo
