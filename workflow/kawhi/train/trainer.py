"""``KawhiGRPOTrainer``: TRL's GRPOTrainer with KAWHI token-level advantages (and DAPO dynamic sampling).

KAWHI keeps the base algorithm's sequence advantage A_g and hands it to tokens as A_g * w_t
(METHOD.md Eq. 17). The weights need the final-layer q/k of the vision-critical heads over
prompt+response, which the trainer already computes in a forward pass, so no extra policy forward runs
for them (METHOD.md section 7):

- when TRL runs the old-log-prob forward in ``_generate_and_score_completions`` (``num_iterations > 1``,
  gradient accumulation misaligned with generation, or vLLM importance correction), q/k are captured
  there and the generation output already carries (B, T) advantages;
- otherwise they are captured during the first loss forward of each micro-batch
  (``_compute_loss`` -> ``_get_per_token_logps_and_entropies``), and the advantages of that batch are
  replaced before the loss reads them. With ``num_iterations == 1`` and ``steps_per_generation ==
  gradient_accumulation_steps`` this forward runs on the rollout's own parameters (no optimizer step
  has happened since generation), i.e. the rollout's policy snapshot.

Either way the weighted advantages are stored in the buffered batch, so later iterations over the same
rollouts (``num_iterations``) reuse them; the capture is dropped as soon as the weights exist.

GSPO runs as GSPO-token. With a sequence-level ratio s_i, TRL's loss has the gradient
-(mean_t A_{i,t}) * s_i * grad(mean_t log p_t): token weights would only rescale A_i. GSPO's own paper
defines GSPO-token for token-level advantages, s_{i,t} = sg[s_i] * p_t / sg[p_t] (same value as s_i,
per-token gradient). With KAWHI on a sequence-level run, the trainer runs TRL's token-level path and
hands it, for this loss only, old log-probs rewritten so that every token's ratio is s_i
(``gspo_token_old_logps``): clipping still acts on s_i and the gradient becomes
-s_i * A_{i,t} * grad log p_t. The policy's own log-probs are untouched, so the KL term (beta > 0, as the
paper trains GSPO) reads the real log-probs, and the weights never touch it. (TRL's
``use_bias_correction_kl`` multiplies that KL by the importance ratio: the same value under GSPO-token,
but its gradient then flows per token instead of through the sequence mean; VERL's KL loss, which the
paper used, has no such factor.) With KAWHI disabled
(variant ``baseline``) nothing here runs and the loss is TRL's own, bit for bit.

Extending it (the fine-grained baselines): override ``token_weights(captured, batch) -> Tensor[B, T]``
to weight the advantages differently, and ``open_capture`` to record other positions or nothing.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor
from trl import GRPOTrainer

from kawhi.config import KawhiSettings
from kawhi.train.baselines.vppo import VPPOMixin
from kawhi.train.dynamic_sampling import DynamicSamplingMixin
from kawhi.train.resume import ResumeMixin


class _KawhiAdvantages(GRPOTrainer):
    """The KAWHI part: capture q/k in an existing forward, turn A_g into A_g * w_t."""

    def __init__(self, *args: Any, kawhi: KawhiSettings | None = None, heads: Sequence[int] = (),
                 gallery_size: int = 4, **kwargs: Any) -> None:
        self._weights_for: tuple[dict[str, Any], dict[str, Any]] | None = None  # (buffered batch, loss inputs)
        self._gspo_inputs: dict[str, Any] | None = None  # loss inputs whose old log-probs become GSPO-token's
        self._rollout_capture = False
        self._rollout_captured = None
        super().__init__(*args, **kwargs)
        from kawhi.method.selection import ImageSelector

        self.kawhi = kawhi if kawhi is not None else KawhiSettings(enabled=False)
        self.kawhi_heads = self._resolve_heads(heads)
        self.kawhi_selector = ImageSelector()  # SGUF once per image, across steps
        # GSPO + KAWHI: TRL's token path with GSPO-token ratios (see the module docstring)
        self._gspo_token = bool(self.kawhi.enabled) and self.importance_sampling_level == "sequence"
        if self._gspo_token:
            self.importance_sampling_level = "token"
        self.gallery_size = int(gallery_size)
        self.gallery: list[dict[str, Any]] = []  # the latest KAWHI rollouts, for the report's gallery

    def _resolve_heads(self, heads: Sequence[int]) -> tuple[int, ...]:
        """H_c: the given vision-critical heads, or every query head for ``kawhi.heads: all``."""
        if not self.kawhi.enabled:
            return tuple(int(h) for h in heads)
        if self.kawhi.heads == "all":
            from kawhi.method.heads import num_query_heads

            return tuple(range(num_query_heads(self.accelerator.unwrap_model(self.model))))
        if not heads:
            raise ValueError("KAWHI is enabled but no vision-critical heads were given: pass --heads "
                             "critical_heads.json with a non-empty 'heads' list (or use the baseline variant)")
        return tuple(int(h) for h in heads)

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
            output["advantages"] = output["advantages"].unsqueeze(1) * self.token_weights(captured, output)
        return output

    def _compute_loss(self, model, inputs):
        if not self.kawhi.enabled:
            return super()._compute_loss(model, inputs)
        loss_inputs = dict(inputs)  # GSPO-token rewrites this loss's old log-probs, never the buffered batch's
        self._weights_for = (inputs, loss_inputs) if self.kawhi_active and inputs["advantages"].dim() == 1 else None
        self._gspo_inputs = loss_inputs if self._gspo_token else None
        try:
            return super()._compute_loss(model, loss_inputs)
        finally:
            self._weights_for = None
            self._gspo_inputs = None

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args: Any,
                                           **kwargs: Any):
        rollout = self._rollout_capture and self._rollout_captured is None and model is self.model
        if self._weights_for is None and not rollout:
            result = super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
                                                                *args, **kwargs)
        else:
            with self.open_capture(model, input_ids, logits_to_keep, kwargs.get("image_grid_thw")) as capture:
                result = super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
                                                                    *args, **kwargs)
            if rollout:
                self._rollout_captured = capture.captured()
            else:
                # _compute_loss reads the advantages after this forward: replace them in the loss inputs and
                # in the buffered batch, so later iterations reuse these weights.
                batch, loss_inputs = self._weights_for
                self._weights_for = None
                weighted = batch["advantages"].unsqueeze(1) * self.token_weights(capture.captured(), batch)
                batch["advantages"] = loss_inputs["advantages"] = weighted
        if self._gspo_inputs is not None:
            loss_inputs, self._gspo_inputs = self._gspo_inputs, None  # only the policy forward of this loss
            mask = loss_inputs["completion_mask"]
            if "tool_mask" in loss_inputs:
                mask = mask * loss_inputs["tool_mask"]
            loss_inputs["old_per_token_logps"] = gspo_token_old_logps(
                result[0], loss_inputs.get("old_per_token_logps"), mask)
        return result

    # ---- hooks: what is captured, and the weights --------------------------------------------------------

    def open_capture(self, model, input_ids: Tensor, logits_to_keep: int, image_grid_thw: Tensor | None):
        """The ``QKCapture`` for a forward over ``input_ids``: final-layer response queries and visual keys of H_c."""
        from kawhi.method.capture import QKCapture
        from kawhi.method.weights import capture_masks, image_token_id_and_merge

        unwrapped = self.accelerator.unwrap_model(model)
        token_id, merge = image_token_id_and_merge(unwrapped.config)
        query_mask, key_mask = capture_masks(input_ids, logits_to_keep, token_id, self.kawhi, image_grid_thw, merge)
        return QKCapture(unwrapped, self.kawhi_heads, self.kawhi.layers, self.kawhi.rotary, query_mask, key_mask)

    @torch.no_grad()
    def token_weights(self, captured, batch: dict[str, Any]) -> Tensor:
        """KAWHI's weights w [B, T] for a rollout batch from the forward's capture (METHOD.md sections 2-5)."""
        from kawhi.method.pixels import images_from_pixel_values
        from kawhi.method.weights import completion_weights

        advantages = batch["advantages"]
        input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        images = None
        if batch.get("pixel_values") is not None and batch.get("image_grid_thw") is not None:
            images = images_from_pixel_values(batch["pixel_values"], batch["image_grid_thw"],
                                              self.processing_class.image_processor)
        # The gallery shows the last step's rollouts: only the last generation batch pays for texts.
        generate_every = self.args.steps_per_generation * self.num_iterations
        want_gallery = self.gallery_size > 0 and self.state.global_step >= self.args.max_steps - generate_every
        tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        result = completion_weights(
            captured, input_ids, batch.get("image_grid_thw"), images, batch["completion_mask"],
            batch["completion_ids"], tokenizer, self.kawhi, self.accelerator.unwrap_model(self.model).config,
            seed=int(self.args.seed), with_texts=want_gallery, selector=self.kawhi_selector)
        mode = "train" if self.model.training else "eval"
        for key, value in result.mean_stats().items():
            self._metrics[mode][key].append(value)
        self._metrics[mode]["kawhi/capture_mb"].append(captured.nbytes / 2**20)
        if want_gallery:
            self._remember_gallery(batch, result, advantages)
        return result.weights.to(advantages.device, advantages.dtype)

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
                "regions": self.kawhi.regions,
                "selections": [selection_record(sel) for sel in result.selections[i]],
                "segments": result.segments[i],
                "segment_weights": result.segment_weights[i],
                "weight_range": [self.kawhi.w_min, self.kawhi.w_max],
                "stats": result.stats[i],
                "pixel_values": _sample_pixels(batch, i),
            })
        self.gallery = rows


def selection_record(selection) -> dict[str, Any]:
    """One image's selection as JSON: the selected token grid and, where SGUF ran, its components and key regions."""
    record: dict[str, Any] = {"selected": selection.selected.astype(int).tolist()}
    if selection.sguf is not None:
        record["labels"] = selection.sguf.labels.tolist()
        record["key"] = selection.sguf.key.astype(int).tolist()
    return record


def gspo_token_old_logps(logps: Tensor, old_logps: Tensor | None, mask: Tensor) -> Tensor:
    """Old log-probs that turn TRL's token-level ratio into GSPO-token's s_{i,t} = sg[s_i] * p_t / sg[p_t].

    Returns sg[log p_t] - sg[log s_i] with log s_i the masked mean log-ratio of the sequence, so
    exp(log p_t - value) = s_i for every token (clipping acts on the sequence ratio, as in GSPO) while
    the gradient is that of log p_t alone. ``old_logps`` None means on-policy (TRL then uses the
    detached log-probs as the old ones, and so does this).
    """
    detached = logps.detach()
    old = detached if old_logps is None else old_logps
    mask = mask.to(detached.dtype)
    log_s = ((detached - old) * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1.0)
    return detached - log_s


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


class KawhiGRPOTrainer(ResumeMixin, DynamicSamplingMixin, VPPOMixin, _KawhiAdvantages):
    """GRPOTrainer + KAWHI token advantages + DAPO dynamic sampling (+ VPPO when configured); resume loads
    the checkpoint's weights.

    Extra keyword arguments: ``kawhi`` (KawhiSettings; ``enabled=False`` gives TRL's loss exactly),
    ``heads`` (vision-critical query heads), ``dynamic_sampling`` and ``dynamic_sampling_max_tries``,
    ``gallery_size`` (KAWHI rollouts of the last step kept in ``self.gallery``).
    Dynamic sampling sits outside the KAWHI hook, so each generation round is weighted on its own.
    ``vppo`` (VPPOSettings or None) switches on the VPPO baseline (kawhi.train.baselines.vppo).
    """

    def __init__(self, *args: Any, dynamic_sampling: bool = False, dynamic_sampling_max_tries: int = 3,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.vppo is not None and self.kawhi.enabled:
            raise ValueError("VPPO is a baseline of its own: train it with a variant that disables KAWHI")
        self.dynamic_sampling = bool(dynamic_sampling)
        self.dynamic_sampling_max_tries = int(dynamic_sampling_max_tries)
        if self.dynamic_sampling_max_tries < 1:
            raise ValueError(f"algorithms.*.dynamic_sampling_max_tries must be >= 1, got {dynamic_sampling_max_tries}")
