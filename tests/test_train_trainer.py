"""KawhiGRPOTrainer: KAWHI off equals TRL exactly, the advantages carry METHOD.md's weights, GSPO + KAWHI takes a
KL term that reads the real log-probs, and the weights come from a forward TRL runs anyway."""

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


def _independent_weights(trainer, batch) -> torch.Tensor:
    """KAWHI's weights for ``batch`` by the public functions alone: a capture of the final layer over prompt +
    response, SGUF on the rebuilt images, the cosine alignment, the paragraphs, Eq. 15."""
    from kawhi.method.capture import QKCapture
    from kawhi.method.credit import alignment, paragraph_weights, segment_means
    from kawhi.method.pixels import images_from_pixel_values
    from kawhi.method.segments import decode_pieces, segment_ids
    from kawhi.method.sguf import sguf_select

    model, processor = trainer.model, trainer.processing_class
    input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    width = batch["completion_ids"].shape[1]
    visual = input_ids == model.config.image_token_id
    response = torch.zeros_like(visual)
    response[:, -width:] = True
    with torch.no_grad(), QKCapture(model, HEADS, [-1], query_mask=response, key_mask=visual) as cap:
        model(input_ids=input_ids, attention_mask=torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1),
              pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"],
              mm_token_type_ids=batch.get("mm_token_type_ids"))
    images = images_from_pixel_values(batch["pixel_values"], batch["image_grid_thw"], processor.image_processor)
    patch = processor.image_processor.patch_size * processor.image_processor.merge_size
    pieces = decode_pieces(processor.tokenizer, batch["completion_ids"])
    out = []
    for b, image in enumerate(images):  # one image per row
        row = cap.captured().row(b)
        alpha = alignment(row.q, row.k, torch.as_tensor(sguf_select(image, patch, seed=trainer.args.seed).selected.ravel()))
        ids = segment_ids(pieces[b])
        out.append(paragraph_weights(segment_means(alpha, ids))[ids])
    return torch.stack(out)


def test_kawhi_advantages_are_the_methods_weights(setup, config):
    """A_g * w_t with w from METHOD.md, recomputed here from the public functions; the loss changes."""
    model_dir, data, out = setup
    settings = _settings(config, "grpo")
    base = _trainer(KawhiGRPOTrainer, model_dir, data, settings, out, kawhi=KawhiSettings(enabled=False))
    kawhi = _trainer(KawhiGRPOTrainer, model_dir, data, settings, out, kawhi=KawhiSettings(), heads=HEADS)
    kawhi.model.load_state_dict(base.model.state_dict())
    batch = _rollouts(base)
    _, grads_b, _ = _loss_and_grads(base, batch)
    _, grads_k, inputs = _loss_and_grads(kawhi, batch)
    weights = inputs["advantages"] / batch["advantages"][:, None]
    torch.testing.assert_close(weights, _independent_weights(kawhi, batch), atol=1e-5, rtol=1e-5)
    # three paragraphs: weights in [0.1, 1.0], summing over the paragraphs to 3 * 0.1 + 0.9
    assert float(weights.min()) >= 0.1 - 1e-6 and float(weights.max()) <= 1.0 + 1e-6
    assert kawhi.gallery and len(kawhi.gallery[0]["segment_weights"]) == 3
    assert sum(kawhi.gallery[0]["segment_weights"]) == pytest.approx(1.2, abs=1e-5)
    assert (grads_b - grads_k).norm() > 1e-3 * grads_b.norm()
    for key in ("kawhi/weight_mean", "kawhi/selected_fraction", "kawhi/alignment_mean", "kawhi/capture_mb"):
        assert key in kawhi._metrics["train"], key
    selection = kawhi.gallery[0]["selections"][0]
    assert set(selection) == {"selected", "labels", "key"}
    assert kawhi.gallery[0]["segments"][-1].strip().endswith("\\boxed{2}.")


class UniformWeights(KawhiGRPOTrainer):
    """A subclass through the documented hook: every token weight 1 (the base algorithm's advantages)."""

    def token_weights(self, captured, batch):
        return torch.ones_like(batch["completion_mask"], dtype=batch["advantages"].dtype)


def _with_reference(trainer, batch, shift=0.1):
    """A reference policy's log-probs for the batch (the policy's own, shifted), so the KL term is not 0."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1),
            torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1), batch["completion_ids"].shape[1],
            pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"], num_images=batch["num_images"],
            mm_token_type_ids=batch.get("mm_token_type_ids"))
    return dict(batch, ref_per_token_logps=logps + shift * torch.randn(logps.shape, generator=g))


def test_gspo_kawhi_trains_with_kl_that_reads_the_real_log_probs(setup, config):
    """The paper trains GSPO with KL: GSPO + KAWHI accepts beta > 0, its KL term is the baseline's, and with
    uniform weights (the token_weights hook) its gradient is GSPO's (GSPO-token equals GSPO then).

    TRL's ``use_bias_correction_kl`` multiplies the KL by the importance ratio, whose gradient is
    per-sequence under GSPO and per-token under GSPO-token (same value): the exact-gradient check runs
    with it off, as in VERL's KL loss (no ratio), and the bias-corrected case is checked for its value."""
    model_dir, data, out = setup
    settings = _settings(config, "gspo")
    settings["algorithm"]["beta"] = 0.04
    base = _trainer(KawhiGRPOTrainer, model_dir, data, settings, out, kawhi=KawhiSettings(enabled=False))
    kawhi = _trainer(KawhiGRPOTrainer, model_dir, data, settings, out, kawhi=KawhiSettings(), heads=HEADS)
    uniform = _trainer(UniformWeights, model_dir, data, settings, out, kawhi=KawhiSettings(), heads=HEADS)
    assert kawhi.beta == 0.04 and kawhi.importance_sampling_level == "token"
    batch = _with_reference(base, _rollouts(base))
    uniform.model.load_state_dict(base.model.state_dict())
    corrected_b, _, _ = _loss_and_grads(base, batch)
    corrected_u, _, _ = _loss_and_grads(uniform, batch)
    torch.testing.assert_close(corrected_u, corrected_b, atol=1e-6, rtol=1e-5)  # same value with the correction
    for t in (base, kawhi, uniform):
        t.args.use_bias_correction_kl = False
    kawhi.model.load_state_dict(base.model.state_dict())

    loss_b, grads_b, _ = _loss_and_grads(base, batch)
    loss_u, grads_u, _ = _loss_and_grads(uniform, batch)
    torch.testing.assert_close(loss_u, loss_b, atol=1e-6, rtol=1e-5)
    assert (grads_b - grads_u).norm() <= 1e-5 * grads_b.norm()
    _, grads_k, _ = _loss_and_grads(kawhi, batch)
    assert (grads_b - grads_k).norm() > 1e-3 * grads_b.norm()  # the weights do act through GSPO-token
    kl = {name: t._metrics["train"]["kl"][-1] for name, t in (("base", base), ("kawhi", kawhi), ("uniform", uniform))}
    assert kl["base"] > 0 and kl["kawhi"] == pytest.approx(kl["base"], rel=1e-6) == kl["uniform"]

    # with zero advantages only the KL term is left: the KAWHI loss and gradient are the baseline's
    still = dict(batch, advantages=torch.zeros_like(batch["advantages"]))
    loss_b0, grads_b0, _ = _loss_and_grads(base, still)
    loss_k0, grads_k0, _ = _loss_and_grads(kawhi, still)
    torch.testing.assert_close(loss_k0, loss_b0, atol=1e-7, rtol=1e-6)
    assert (grads_b0 - grads_k0).norm() <= 1e-5 * grads_b0.norm()
    assert "old_per_token_logps" not in still  # GSPO-token rewrote the loss's copy, not the batch


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


def test_heads_are_required_unless_all_heads_are_read(setup, config):
    model_dir, data, out = setup
    with pytest.raises(ValueError, match="no vision-critical heads"):
        _trainer(KawhiGRPOTrainer, model_dir, data, _settings(config), out, kawhi=KawhiSettings(), heads=[])
    every = _trainer(KawhiGRPOTrainer, model_dir, data, _settings(config), out, kawhi=KawhiSettings(heads="all"))
    assert every.kawhi_heads == tuple(range(every.model.config.get_text_config().num_attention_heads))


def test_bad_heads_file(tmp_path):
    from kawhi.train.run import read_heads

    bad = tmp_path / "critical_heads.json"
    bad.write_text(json.dumps({"heads": "0,1"}))
    with pytest.raises(ValueError, match="critical_heads.json"):
        read_heads(bad)
    bad.write_text(json.dumps({"heads": [3, 1], "threshold": 50}))
    assert read_heads(bad) == [3, 1]


def test_gspo_token_old_logps_value_and_gradient():
    from kawhi.train.trainer import gspo_token_old_logps

    torch.manual_seed(0)
    logps = torch.randn(3, 5, requires_grad=True)
    old = logps.detach() + 0.1 * torch.randn(3, 5)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    rewritten = gspo_token_old_logps(logps, old, mask)
    assert not rewritten.requires_grad
    ratio = torch.exp(logps - rewritten)  # what TRL's token-level path computes
    seq_ratio = torch.exp(((logps.detach() - old) * mask).sum(-1) / mask.sum(-1))
    assert torch.allclose(ratio.detach(), seq_ratio[:, None].expand(3, 5), atol=1e-6)  # every token carries s_i
    weights = torch.randn(3, 5)
    (ratio * weights).sum().backward()
    assert torch.allclose(logps.grad, weights * ratio.detach())  # d ratio = ratio * d log p_t: per-token gradient
    assert torch.equal(gspo_token_old_logps(logps, None, mask), logps.detach())  # on-policy: TRL's own default
