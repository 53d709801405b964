"""``KawhiGRPOTrainer``: TRL's GRPOTrainer with KAWHI token-level advantages (and DAPO dynamic sampling).

KAWHI keeps the base algorithm's sequence advantage A_i and hands it to tokens as A_i * w_t
(METHOD.md). The weights need the post-rotary q/k of the vision-critical heads over prompt+response,
which the trainer already computes in a forward pass, so no extra policy forward is run for them:

- when TRL runs the old-log-prob forward in ``_generate_and_score_completions`` (``num_iterations > 1``,
  gradient accumulation misaligned with generation, or vLLM importance correction), q/k are captured
  there and the generation output already carries (B, T) advantages;
- otherwise they are captured during the first loss forward of each micro-batch
  (``_compute_loss`` -> ``_get_per_token_logps_and_entropies``), and the advantages of that batch are
  replaced before the loss reads them. With ``num_iterations == 1`` and ``steps_per_generation ==
  gradient_accumulation_steps`` this forward runs on the rollout's own parameters (no optimizer step
  has happened since generation), i.e. the rollout's policy snapshot.

Either way the weighted advantages are stored in the buffered batch, so later iterations over the same
rollouts (``num_iterations``) reuse them instead of recomputing from a moved policy.

GSPO needs one more step. With a sequence-level ratio s_i, TRL's loss has the gradient
-(mean_t A_{i,t}) * s_i * grad(mean_t log p_t): token advantages that average to A_i (as KAWHI's do)
change nothing. GSPO's own paper defines GSPO-token for token-level advantages,
s_{i,t} = sg[s_i] * p_t / sg[p_t] (same value as s_i, per-token gradient). With KAWHI on a
sequence-level run, the trainer runs TRL's token-level path on log-probs rewritten to that form
(``gspo_token_logps``), so clipping still acts on s_i and the gradient becomes
-s_i * A_{i,t} * grad log p_t. With uniform weights this equals GSPO's gradient (tested). TRL's
``_compute_loss`` accepts (B, T) advantages as is, so with KAWHI disabled (variant ``baseline``) nothing
here runs and the loss is TRL's own, bit for bit.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor
from trl import GRPOTrainer

from kawhi.config import KawhiSettings
from kawhi.train.dynamic_sampling import DynamicSamplingMixin
from kawhi.train.resume import ResumeMixin


class _KawhiAdvantages(GRPOTrainer):
    """The KAWHI part: capture q/k in an existing forward, turn A_i into A_i * w_t."""

    def __init__(self, *args: Any, kawhi: KawhiSettings | None = None, heads: Sequence[int] = (),
                 gallery_size: int = 4, **kwargs: Any) -> None:
        self._capture_for: dict[str, Any] | None = None  # batch whose advantages the next forward must weight
        self._rollout_capture = False
        self._rollout_captured = None
        self._loss_inputs: dict[str, Any] | None = None
        self._gspo_token = False
        super().__init__(*args, **kwargs)
        self.kawhi = kawhi if kawhi is not None else KawhiSettings(enabled=False)
        self.kawhi_heads = tuple(int(h) for h in heads)
        if self.kawhi.enabled and not self.kawhi_heads:
            raise ValueError("KAWHI is enabled but no vision-critical heads were given: pass --heads "
                             "critical_heads.json with a non-empty 'heads' list (or use the baseline variant)")
        # GSPO + KAWHI: TRL's token path on GSPO-token log-probs (see the module docstring)
        self._gspo_token = bool(self.kawhi.enabled) and self.importance_sampling_level == "sequence"
        if self._gspo_token:
            if self.beta != 0.0:
                raise ValueError("KAWHI with a sequence-level ratio (GSPO) runs as GSPO-token, which rewrites the "
                                 "log-probs the KL term would read: set algorithms.<algo>.beta to 0")
            self.importance_sampling_level = "token"
        self.gallery_size = int(gallery_size)
        self.gallery: list[dict[str, Any]] = []  # the latest KAWHI rollouts, for the report's gallery

    # ---- where the forward passes happen ------------------------------------------------------------

    @property
    def kawhi_active(self) -> bool:
        return bool(self.kawhi.enabled) and self.model.training

    def _generate_and_score_completions(self, inputs):
        if not self.kawhi_active:
            return super()._generate_and_score_completions(inputs)
        self._rollout_capture = True
        self._rollout_captured = None
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            self._rollout_capture = False
        captured, self._rollout_captured = self._rollout_captured, None
        if captured is not None:  # TRL ran its old-logps forward: weight the advantages right here
            output["advantages"] = self._weighted_advantages(captured, output)
        return output

    def _compute_loss(self, model, inputs):
        needs_weights = self.kawhi_active and inputs["advantages"].dim() == 1
        self._capture_for = inputs if needs_weights else None
        self._loss_inputs = inputs
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._capture_for = None
            self._loss_inputs = None

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args: Any,
                                           **kwargs: Any):
        result = self._logps_with_capture(model, input_ids, attention_mask, logits_to_keep, *args, **kwargs)
        loss_inputs = self._loss_inputs
        if self._gspo_token and loss_inputs is not None:
            self._loss_inputs = None  # only the policy forward of this loss
            mask = loss_inputs["completion_mask"]
            if "tool_mask" in loss_inputs:
                mask = mask * loss_inputs["tool_mask"]
            logps, *rest = result
            result = (gspo_token_logps(logps, loss_inputs.get("old_per_token_logps"), mask), *rest)
        return result

    def _logps_with_capture(self, model, input_ids, attention_mask, logits_to_keep, *args: Any, **kwargs: Any):
        target = self._capture_for
        rollout = self._rollout_capture and self._rollout_captured is None and model is self.model
        if target is None and not rollout:
            return super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
                                                              *args, **kwargs)
        from kawhi.method.capture import QKCapture

        with QKCapture(self.accelerator.unwrap_model(model), self.kawhi_heads, self.kawhi.layers) as capture:
            result = super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
                                                                *args, **kwargs)
        captured = capture.captured()
        if rollout:
            self._rollout_captured = captured
        else:
            # _compute_loss reads inputs["advantages"] after this forward: replace them in the batch it holds
            # (the buffered one, so later iterations reuse these weights).
            target["advantages"] = self._weighted_advantages(captured, target)
            self._capture_for = None
        return result

    # ---- the weights ----------------------------------------------------------------------------------

    @torch.no_grad()
    def _weighted_advantages(self, captured, batch: dict[str, Any]) -> Tensor:
        from kawhi.method.weights import completion_weights

        advantages = batch["advantages"]
        input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        # The gallery shows the last step's rollouts: only the last generation batch pays for texts and grids.
        generate_every = self.args.steps_per_generation * self.num_iterations
        want_gallery = self.gallery_size > 0 and self.state.global_step >= self.args.max_steps - generate_every
        seed = int(self.args.seed) * 1_000_003 + int(self.state.global_step) * 7919
        result = completion_weights(
            captured, input_ids, batch.get("image_grid_thw"), batch["completion_mask"], batch["completion_ids"],
            self.processing_class.tokenizer if hasattr(self.processing_class, "tokenizer") else self.processing_class,
            self.kawhi, self.accelerator.unwrap_model(self.model).config, advantages=advantages, seed=seed,
            with_texts=want_gallery)
        weights = result.weights.to(advantages.device, advantages.dtype)
        mode = "train" if self.model.training else "eval"
        for key, value in result.mean_stats().items():
            self._metrics[mode][key].append(value)
        if want_gallery:
            self._remember_gallery(batch, result, advantages)
        return advantages.unsqueeze(1) * weights

    def _remember_gallery(self, batch: dict[str, Any], result, advantages: Tensor) -> None:
        tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        n = batch["completion_ids"].shape[0]
        # Prefer rollouts the figure can say something about: several segments, a non-zero advantage.
        order = sorted(range(n), key=lambda i: (result.stats[i]["n_segments"] <= 1, float(advantages[i]) == 0.0, i))
        rows = []
        for i in order[: self.gallery_size]:
            prompt = tokenizer.decode(batch["prompt_ids"][i][batch["prompt_mask"][i].bool()], skip_special_tokens=False)
            response = tokenizer.decode(batch["completion_ids"][i][batch["completion_mask"][i].bool()],
                                        skip_special_tokens=True)
            rows.append({
                "step": int(self.state.global_step) + 1,
                "row": i,
                "prompt": prompt,
                "response": response,
                "advantage": float(advantages[i]),
                "saliency": [g.tolist() for g in result.saliency[i]],
                "mask": [m.int().tolist() for m in result.masks[i]],
                "segments": result.segments[i],
                "segment_weights": result.segment_weights[i],
                "stats": result.stats[i],
                "pixel_values": _sample_pixels(batch, i),
            })
        self.gallery = rows


def gspo_token_logps(logps: Tensor, old_logps: Tensor | None, mask: Tensor) -> Tensor:
    """Per-token log-probs whose token-level ratio is GSPO-token's s_{i,t} = sg[s_i] * p_t / sg[p_t].

    Value: old_t + sg[log s_i] with log s_i the masked mean log-ratio of the sequence, so
    exp(value - old_t) = s_i for every token (clipping acts on the sequence ratio, as in GSPO);
    gradient: that of log p_t alone. ``old_logps`` None means on-policy (TRL then uses the detached
    log-probs as old ones, and so does this).
    """
    detached = logps.detach()
    old = detached if old_logps is None else old_logps
    mask = mask.to(logps.dtype)
    log_s = ((detached - old) * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1.0)
    return logps - detached + (old + log_s)


def _sample_pixels(batch: dict[str, Any], row: int) -> dict[str, Any] | None:
    """Row ``row``'s patchified pixel values and grids (the gallery turns them back into an image)."""
    if batch.get("pixel_values") is None or batch.get("image_grid_thw") is None or batch.get("num_images") is None:
        return None
    counts = list(batch["num_images"])
    grid = batch["image_grid_thw"]
    first = sum(counts[:row])
    lengths = grid.prod(-1).tolist()
    start = sum(lengths[:first])
    stop = start + sum(lengths[first:first + counts[row]])
    return {"pixel_values": batch["pixel_values"][start:stop].detach().cpu(),
            "image_grid_thw": grid[first:first + counts[row]].detach().cpu()}


class KawhiGRPOTrainer(ResumeMixin, DynamicSamplingMixin, _KawhiAdvantages):
    """GRPOTrainer + KAWHI token advantages + DAPO dynamic sampling; resume loads the checkpoint's weights.

    Extra keyword arguments: ``kawhi`` (KawhiSettings; ``enabled=False`` gives TRL's loss exactly),
    ``heads`` (vision-critical query heads), ``dynamic_sampling`` and ``dynamic_sampling_max_tries``,
    ``gallery_size`` (KAWHI rollouts of the last step kept in ``self.gallery``).
    Dynamic sampling sits outside the KAWHI hook, so each generation round is weighted on its own.
    """

    def __init__(self, *args: Any, dynamic_sampling: bool = False, dynamic_sampling_max_tries: int = 3,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dynamic_sampling = bool(dynamic_sampling)
        self.dynamic_sampling_max_tries = int(dynamic_sampling_max_tries)
        if self.dynamic_sampling_max_tries < 1:
            raise ValueError(f"algorithms.*.dynamic_sampling_max_tries must be >= 1, got {dynamic_sampling_max_tries}")
