"""What a resumed run needs to continue exactly as the uninterrupted one would have.

Found by the two-process test (tests/test_train_multiprocess.py), which checks that a run resumed from
checkpoint k makes the same step k+1 (same parameters after it) as the uninterrupted run. Two faults
of the stock path made it differ:

1. Weights (transformers#43701). ``Trainer._load_from_checkpoint`` reads ``model.safetensors`` with
   ``load_state_dict(strict=False)``. ``save_pretrained`` writes Qwen-VL checkpoints under their legacy
   key names (``visual.*``, ``model.layers.*``) while the modules are ``model.visual.*`` and
   ``model.language_model.*``, so on resume no key matches, a warning lists them all, and training
   goes on from the *starting* weights with the checkpoint's optimiser state. ``ResumeMixin`` loads the
   checkpoint through the model class's own ``from_pretrained`` (which applies the key conversion) and
   copies it in strictly, so any mismatch fails instead of warning. FSDP and DeepSpeed restore their own
   sharded checkpoint formats and keep transformers' path.
2. Data order. TRL's ``RepeatSampler`` draws each epoch's permutation from one generator seeded once,
   so epoch e's order depends on the e permutations drawn before it; a run resumed at an epoch
   boundary starts a fresh generator and trains on another order. ``EpochSeededRepeatSampler`` seeds
   epoch e's permutation by (seed, e) through ``set_epoch``, which transformers calls before every epoch
   (so a resumed run mid-epoch skips into the same order, too).
"""

from __future__ import annotations

from typing import Any

from trl.trainer.utils import RepeatSampler


class EpochSeededRepeatSampler(RepeatSampler):
    """TRL's sampler whose permutation of epoch e depends only on (seed, e)."""

    def set_epoch(self, epoch: int) -> None:
        if self.shuffle and self.seed is not None:
            self.generator.manual_seed(int(self.seed) + 1_000_003 * int(epoch))


class ResumeMixin:
    """Mix in before ``GRPOTrainer`` (weights are loaded strictly; the train sampler is epoch-seeded)."""

    def _get_train_sampler(self, dataset: Any = None):
        sampler = super()._get_train_sampler(dataset)
        if type(sampler) is RepeatSampler:  # TRL's; anything else was chosen on purpose and is kept
            sampler.__class__ = EpochSeededRepeatSampler
        return sampler

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        if self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        saved = type(target).from_pretrained(resume_from_checkpoint, dtype=next(target.parameters()).dtype)
        target.load_state_dict(saved.state_dict())  # strict: every parameter of the policy comes back
        return None
