"""VPPO ("Spotlight on Token Perception for Multimodal RL", Huang et al., ICLR 2026) on TRL's GRPOTrainer.

Ported from the authors' code (huaixuheqing/VPPO-RL: ``verl/workers/actor/dp_actor.py`` ``update_policy``,
``verl/workers/perc_utils.py`` ``random_patch_blackening``, ``examples/configs/train_vppo_7b.sh``):

1. After generation the policy scores every completion twice without gradient: with the real image
   (TRL's old log-probs where it computed them) and with a perturbed one whose patches are blackened
   with probability ``black_prob``.
2. Visual dependency per token: the k3 estimate of KL(real || perturbed) at the sampled token,
   ``exp(d) - d - 1`` with ``d = logp_perturbed - logp_real`` clamped to [-20, 20], the result clamped to
   [0, ``kl_clamp``] (the authors' ``low_var_kl``).
3. Token filter: per response, the ceil(``token_share`` x length) most dependent tokens keep the policy
   gradient, the rest get none (the authors multiply the per-token loss by this mask; a zero token
   advantage is the same thing in TRL's (B, T) advantage path).
4. Advantage shaping: each response's mean dependency, min-max normalised over the batch, is mapped
   onto [``shaping_min``, shaping_max] with shaping_max = shaping_min + (1 - shaping_min) / mean, so the
   factors average to about 1; the response's advantage is multiplied by it.
5. The authors' "entropy penalty": ``entropy_penalty`` x the masked mean of -log p over the response,
   added to the loss.

Where this differs from the authors' verl run (docs/train.md): the blackened patches are the vision
tower's own patches, set to the processor's value of a black pixel in ``pixel_values`` (14 px on
Qwen2.5-VL, the authors' 14; 16 px on Qwen3-VL), instead of 14 px squares of the resized PIL image; the
min/max and the mean of the shaping run over the generation batch of this process; the penalty is a
mean per micro-batch, not weighted by micro-batch token counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from trl import GRPOTrainer

# the keys of TRL's generation output that its policy forward reads (as in GRPOTrainer._compute_loss)
_FORWARD_KEYS = ("image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes", "num_tiles", "image_sizes",
                 "token_type_ids", "mm_token_type_ids", "image_position_ids")


@dataclass(frozen=True)
class VPPOSettings:
    """``algorithms.<name>.vppo`` (schema ``vppo_settings``; defaults: the authors' 7B script)."""

    token_share: float = 0.4
    shaping_min: float = 0.9
    advantage_shaping: bool = True
    entropy_penalty: float = 0.06
    black_prob: float = 0.5
    kl_clamp: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 < self.token_share <= 1.0:
            raise ValueError(f"vppo.token_share must lie in (0, 1], got {self.token_share}")
        if not 0.0 <= self.shaping_min <= 1.0:
            raise ValueError(f"vppo.shaping_min must lie in [0, 1], got {self.shaping_min}")
        if not 0.0 <= self.black_prob <= 1.0:
            raise ValueError(f"vppo.black_prob must lie in [0, 1], got {self.black_prob}")


# ---- the mechanism, as pure functions (tests call them on hand-built batches) ------------------------

def visual_dependency(real_logps: Tensor, perturbed_logps: Tensor, mask: Tensor, kl_clamp: float = 10.0) -> Tensor:
    """Per-token dependency (B, T): the authors' clamped k3 KL estimate at the sampled token; 0 on padding."""
    diff = (perturbed_logps.float() - real_logps.float()).clamp(-20.0, 20.0)
    kl = (diff.exp() - diff - 1.0).clamp(min=0.0, max=kl_clamp)
    return kl * mask.to(kl.dtype)


def top_share_mask(dependency: Tensor, mask: Tensor, share: float) -> Tensor:
    """Bool (B, T): per row, the ceil(share x valid tokens) most dependent valid tokens (ties: lower index)."""
    valid = mask.bool()
    k = torch.ceil(valid.sum(dim=1).to(torch.float64) * share).long()
    scores = dependency.float().masked_fill(~valid, -math.inf)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    rank_keep = torch.arange(scores.size(1), device=scores.device).expand_as(scores) < k.unsqueeze(1)
    keep = torch.zeros_like(valid)
    keep.scatter_(1, order, rank_keep)
    return keep & valid


def advantage_scaling(dependency: Tensor, mask: Tensor, shaping_min: float) -> Tensor:
    """Per-response factor (B,): the mean dependency mapped onto [shaping_min, shaping_max] (see module doc)."""
    lengths = mask.sum(dim=1)
    scores = dependency.sum(dim=1) / lengths.clamp(min=1)
    factor = torch.ones_like(scores)
    valid = lengths > 0
    if valid.sum() < 2:
        return factor
    low, high = scores[valid].min(), scores[valid].max()
    if float(high - low) <= 1e-6:
        return factor
    normalised = ((scores[valid] - low) / (high - low)).clamp(0.0, 1.0)
    top = shaping_min + (1.0 - shaping_min) / (normalised.mean() + 1e-8)
    factor[valid] = shaping_min + normalised * (top - shaping_min)
    return factor


def black_pixel_row(image_processor: Any, pixel_values: Tensor) -> Tensor:
    """The processor's ``pixel_values`` row of an all-black patch (one row per vision patch on Qwen-VL)."""
    from PIL import Image

    side = int(getattr(image_processor, "patch_size", 14)) * int(getattr(image_processor, "merge_size", 2))
    rows = image_processor(images=[Image.new("RGB", (side * 2, side * 2))], return_tensors="pt")["pixel_values"]
    if rows.dim() != 2 or rows.shape[-1] != pixel_values.shape[-1]:
        raise ValueError(f"VPPO blackens vision patches as rows of pixel_values; this processor gives shape "
                         f"{tuple(rows.shape)} for a black image against {tuple(pixel_values.shape)}")
    return rows[0].to(pixel_values.device, pixel_values.dtype)


def blacken_patches(pixel_values: Tensor, black_row: Tensor, prob: float, generator: torch.Generator) -> Tensor:
    """A copy of ``pixel_values`` with each row (vision patch) replaced by ``black_row`` with probability ``prob``."""
    hit = torch.rand(pixel_values.shape[0], generator=generator) < prob
    out = pixel_values.clone()
    out[hit.to(out.device)] = black_row
    return out


# ---- the trainer hook -------------------------------------------------------------------------------

class VPPOMixin(GRPOTrainer):
    """Turns A_i into A_i x shaping_i x filter_{i,t} after each generation; adds the entropy penalty.

    Off (``vppo=None``) it changes nothing: no extra forward, TRL's loss as is.
    """

    def __init__(self, *args: Any, vppo: VPPOSettings | None = None, **kwargs: Any) -> None:
        self.vppo = vppo
        self._vppo_penalty_logps: Tensor | None = None
        self._vppo_want_logps = False
        super().__init__(*args, **kwargs)
        self._vppo_black_row: Tensor | None = None

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if self.vppo is not None and self.model.training:
            output["advantages"] = self._vppo_advantages(output)
        return output

    @torch.no_grad()
    def _vppo_logps(self, batch: dict[str, Any], pixel_values: Tensor | None) -> Tensor:
        input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        logps, _, _ = self._get_per_token_logps_and_entropies(
            self.model, input_ids, attention_mask, batch["completion_ids"].size(1),
            batch_size=self.args.per_device_train_batch_size, pixel_values=pixel_values,
            **{key: batch.get(key) for key in _FORWARD_KEYS})
        return logps

    def _vppo_advantages(self, batch: dict[str, Any]) -> Tensor:
        settings = self.vppo
        pixels = batch.get("pixel_values")
        if pixels is None:
            raise ValueError("VPPO needs images: the training batch has no pixel_values")
        mask = batch["completion_mask"] * batch["tool_mask"] if "tool_mask" in batch else batch["completion_mask"]
        real = batch.get("old_per_token_logps")
        if real is None:  # TRL skipped its old-logps forward (on-policy): run it, the authors always do
            real = self._vppo_logps(batch, pixels)
        if self._vppo_black_row is None:
            self._vppo_black_row = black_pixel_row(self.processing_class.image_processor, pixels)
        generator = torch.Generator().manual_seed(int(self.args.seed) * 1_000_003 + int(self.state.global_step))
        perturbed = self._vppo_logps(batch, blacken_patches(pixels, self._vppo_black_row, settings.black_prob,
                                                            generator))
        dependency = visual_dependency(real, perturbed, mask, settings.kl_clamp)
        keep = top_share_mask(dependency, mask, settings.token_share)
        factor = (advantage_scaling(dependency, mask, settings.shaping_min) if settings.advantage_shaping
                  else torch.ones(dependency.size(0), device=dependency.device))
        advantages = batch["advantages"]
        if advantages.dim() == 2:
            raise ValueError("VPPO expects sequence advantages; another hook already made them per token")
        mode = "train" if self.model.training else "eval"
        valid = mask.bool()
        self._metrics[mode]["vppo/dependency_mean"].append(float(dependency[valid].mean()) if valid.any() else 0.0)
        self._metrics[mode]["vppo/token_fraction"].append(float(keep.sum() / valid.sum().clamp(min=1)))
        self._metrics[mode]["vppo/scaling_factor_mean"].append(float(factor.mean()))
        return advantages.unsqueeze(1) * factor.to(advantages).unsqueeze(1) * keep.to(advantages.dtype)

    # ---- the entropy penalty: the loss forward's log-probs, plus coef x mean(-log p) --------------------

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args: Any,
                                           **kwargs: Any):
        result = super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
                                                            *args, **kwargs)
        if self._vppo_want_logps:
            self._vppo_want_logps = False  # only the policy forward of this loss
            self._vppo_penalty_logps = result[0]
        return result

    def _compute_loss(self, model, inputs):
        penalty = self.vppo is not None and self.vppo.entropy_penalty > 0 and self.model.training
        self._vppo_want_logps = penalty
        try:
            loss = super()._compute_loss(model, inputs)
        finally:
            self._vppo_want_logps = False
        if penalty and self._vppo_penalty_logps is not None:
            logps, self._vppo_penalty_logps = self._vppo_penalty_logps, None
            mask = inputs["completion_mask"].to(logps.dtype)
            neg_logp = -(logps * mask).sum() / mask.sum().clamp(min=1.0)
            self._metrics["train"]["vppo/entropy_penalty"].append(float(neg_logp.detach()))
            loss = loss + self.vppo.entropy_penalty * neg_logp / self.current_gradient_accumulation_steps
        return loss
