"""KawhiGRPOTrainer: KAWHI-off equals TRL exactly, lam=0 equals the baseline, weights come from an existing forward."""

import copy
import json

import pytest
import torch
from trl import GRPOTrainer

from kawhi.config import KawhiSettings, load_config, train_settings
from kawhi.train.presets import build_grpo_config
from kawhi.train.rewards import build_reward_functions
from kawhi.train.run import load_policy, load_rl_dataset
from kawhi.train.trainer import KawhiGRPOTrainer

G = 2
HEADS = [0, 1, 5]
PARAGRAPHS = "Count the red cells.\n\nThere are two red cells and one blue.\n\nThe answer is \\boxed{2}."


@pytest.fixture(scope="module")
def config(repo_root):
    return load_config(repo_root / "config" / "config.yaml")


def _settings(config, algo="grpo", variant="baseline", **training):
    s = train_settings(config, "qwen25vl-tiny", algo, variant)
    s["training"].update({"max_steps": 1, "per_device_train_batch_size": 4, "num_generations": G,
                          "max_completion_length": 12, "save_steps": 100, **training})
    return s


def _trainer(cls, model_dir, data, settings, out, **extra):
    model, processor = load_policy(model_dir)
    funcs, weights = build_reward_functions(settings["training"], settings["algorithm"])
    args = build_grpo_config(settings, out, reward_weights=weights)
    dataset = load_rl_dataset([data])
    return cls(model=model, processing_class=processor, reward_funcs=funcs, args=args, train_dataset=dataset, **extra)


def _rollouts(trainer, n_prompts=2):
    """One generation batch with paragraph responses and known advantages (the same for every trainer)."""
    torch.manual_seed(0)
    trainer.model.train()
    rows = [trainer.train_dataset[i] for i in range(n_prompts) for _ in range(G)]
    batch = trainer._generate_and_score_completions(rows)
    tok = trainer.processing_class.tokenizer
    ids = tok(PARAGRAPHS, add_special_tokens=False)["input_ids"]
    n, p = batch["completion_ids"].shape[0], batch["prompt_ids"].shape[1]
    for key in ("mm_token_type_ids", "token_type_ids"):  # these span prompt + completion
        if key in batch:
            batch[key] = torch.cat([batch[key][:, :p], batch[key].new_zeros(n, len(ids))], dim=1)
    batch["completion_ids"] = torch.tensor([ids] * n)
    batch["completion_mask"] = torch.ones(n, len(ids), dtype=torch.long)
    batch["num_items_in_batch"] = batch["completion_mask"].sum()
    # the completions were replaced, so log-probs recorded for the sampled ones (num_iterations > 1, as in
    # the GSPO preset) no longer fit: drop them, and TRL takes the current ones as the old policy's
    for key in ("old_per_token_logps", "sampling_per_token_logps", "ref_per_token_logps"):
        batch.pop(key, None)
    # rows 0-1 and 2-3 share prompt and response: advantages must not cancel within a pair
    batch["advantages"] = torch.tensor([1.0, -0.25, 0.5, -2.0][:n])
    return batch


def _loss_and_grads(trainer, batch):
    model = trainer.model
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which these calls bypass
    model.train()
    model.zero_grad()
    inputs = copy.copy(batch)
    loss = trainer._compute_loss(model, inputs)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return loss.detach(), grads, inputs


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen3_vl"])
def setup(request, tiny_model_factory, suite_factory, config, tmp_path_factory):
    model_dir = tiny_model_factory(request.param)
    data = suite_factory("shapes_count", "train", n=8)
    return model_dir, data, tmp_path_factory.mktemp("trainer")


@pytest.mark.parametrize("algo", ["grpo", "dapo", "gspo"])
def test_kawhi_off_loss_equals_trl(setup, config, algo):
    model_dir, data, out = setup
    settings = _settings(config, algo)
    trl_trainer = _trainer(GRPOTrainer, model_dir, data, settings, out)
    ours = _trainer(KawhiGRPOTrainer, model_dir, data, settings, out, kawhi=KawhiSettings(enabled=False))
    ours.model.load_state_dict(trl_trainer.model.state_dict())
    batch = _rollouts(trl_trainer)
    loss_trl, grads_trl, _ = _loss_and_grads(trl_trainer, batch)
    loss_ours, grads_ours, inputs = _loss_and_grads(ours, batch)
    assert torch.equal(loss_trl, loss_ours)
    assert torch.equal(grads_trl, grads_ours)
    assert inputs["advantages"].dim() == 1  # untouched


@pytest.mark.parametrize("algo", ["grpo", "dapo", "gspo"])
def test_lam_zero_equals_baseline_and_kawhi_reweights(setup, config, algo):
    """Also for GSPO, whose sequence-level ratio would ignore token weights without the GSPO-token form."""
    model_dir, data, out = setup
    settings = _settings(config, algo)
    base = _trainer(KawhiGRPOTrainer, model_dir, data, settings, out, kawhi=KawhiSettings(enabled=False))
    lam0 = _trainer(KawhiGRPOTrainer, model_dir, data, settings, out, kawhi=KawhiSettings(lam=0.0), heads=HEADS)
    kawhi = _trainer(KawhiGRPOTrainer, model_dir, data, settings, out,
                     kawhi=KawhiSettings(lam=0.9, w_min=0.1, w_max=10.0), heads=HEADS)
    for t in (lam0, kawhi):
        t.model.load_state_dict(base.model.state_dict())
    batch = _rollouts(base)
    loss_b, grads_b, _ = _loss_and_grads(base, batch)
    loss_0, grads_0, inputs_0 = _loss_and_grads(lam0, batch)
    assert torch.allclose(loss_b, loss_0, rtol=0, atol=1e-7)
    # GRPO/DAPO: bit-identical up to A * 1.0; GSPO goes through the GSPO-token form (float reassociation)
    assert (grads_b - grads_0).norm() <= 1e-5 * grads_b.norm(), float((grads_b - grads_0).norm() / grads_b.norm())
    assert inputs_0["advantages"].dim() == 2 and torch.all(inputs_0["advantages"] == batch["advantages"][:, None])

    _, grads_k, inputs_k = _loss_and_grads(kawhi, batch)
    adv = inputs_k["advantages"]
    assert adv.shape == batch["completion_ids"].shape
    # credit is redistributed inside each response, never created: token-mean of A_i * w_t is A_i
    assert torch.allclose(adv.mean(dim=1), batch["advantages"], atol=1e-5)
    assert (adv.std(dim=1) > 0).all()
    # an untrained tiny model attends almost uniformly, so the weights stay near 1: a small but real change
    assert (grads_b - grads_k).norm() > 1e-4 * grads_b.norm()
    assert (grads_b - grads_k).norm() > 10 * (grads_b - grads_0).norm()
    assert "kawhi/weight_mean" in kawhi._metrics["train"]
    assert kawhi.gallery and kawhi.gallery[0]["segments"][-1].strip().endswith("\\boxed{2}.")
    assert len(kawhi.gallery[0]["segment_weights"]) == 3


def _count_forwards(trainer):
    calls = []
    handle = trainer.model.register_forward_pre_hook(lambda *a: calls.append(1))
    return calls, handle


@pytest.mark.parametrize("num_iterations", [1, 2])
def test_no_extra_policy_forward(setup, config, num_iterations):
    """KAWHI's q/k come from a forward TRL runs anyway: the same number of policy forwards per step."""
    model_dir, data, out = setup
    counts = {}
    for name, kawhi in (("baseline", KawhiSettings(enabled=False)), ("kawhi", KawhiSettings())):
        settings = _settings(config, "grpo", max_steps=2)
        settings["algorithm"]["num_iterations"] = num_iterations
        trainer = _trainer(KawhiGRPOTrainer, model_dir, data, settings, out / name, kawhi=kawhi,
                           heads=HEADS if kawhi.enabled else ())
        calls, handle = _count_forwards(trainer)
        trainer.train()
        handle.remove()
        counts[name] = len(calls)
        if kawhi.enabled:
            logged = [h for h in trainer.state.log_history if "kawhi/weight_mean" in h]
            # once per generation batch: every step, or every num_iterations steps (then from TRL's old-logps forward)
            assert len(logged) == 2 // num_iterations, "weights were not computed for every generation batch"
    assert counts["kawhi"] == counts["baseline"]


def test_kawhi_without_heads_is_an_error(setup, config):
    model_dir, data, out = setup
    with pytest.raises(ValueError, match="no vision-critical heads"):
        _trainer(KawhiGRPOTrainer, model_dir, data, _settings(config), out, kawhi=KawhiSettings(), heads=[])


def test_bad_heads_file(tmp_path):
    from kawhi.train.run import read_heads

    bad = tmp_path / "critical_heads.json"
    bad.write_text(json.dumps({"heads": "0,1"}))
    with pytest.raises(ValueError, match="critical_heads.json"):
        read_heads(bad)
    bad.write_text(json.dumps({"heads": [3, 1], "threshold": 50}))
    assert read_heads(bad) == [3, 1]


def test_gspo_token_logps_value_and_gradient():
    from kawhi.train.trainer import gspo_token_logps

    torch.manual_seed(0)
    logps = torch.randn(3, 5, requires_grad=True)
    old = logps.detach() + 0.1 * torch.randn(3, 5)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    out = gspo_token_logps(logps, old, mask)
    seq_ratio = torch.exp(((logps.detach() - old) * mask).sum(-1) / mask.sum(-1))
    token_ratio = torch.exp(out.detach() - old)
    assert torch.allclose(token_ratio, seq_ratio[:, None].expand(3, 5), atol=1e-6)  # every token carries s_i
    weights = torch.randn(3, 5)
    (out * weights).sum().backward()
    assert torch.allclose(logps.grad, weights)  # the gradient is d log p_t alone
    on_policy = gspo_token_logps(logps, None, mask)
    assert torch.allclose(on_policy, logps)
