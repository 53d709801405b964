"""Resume that really loads the checkpoint's weights (transformers#43701).

transformers' ``Trainer._load_from_checkpoint`` reads ``model.safetensors`` into the model with
``load_state_dict(strict=False)``. ``save_pretrained`` writes Qwen-VL checkpoints under their legacy key
names (``visual.*``, ``model.layers.*``) while the model's modules are ``model.visual.*`` and
``model.language_model.*``, so on resume no key matches, a warning lists them all, and training goes
on from the *starting* weights with the checkpoint's optimiser state. Found by the two-process test
(tests/test_train_multiprocess.py): a resumed step never reproduced the uninterrupted one.

``ResumeWeightsMixin`` loads the checkpoint through the model class's own ``from_pretrained`` (which
applies the key conversion) and copies it in strictly, so any mismatch fails instead of warning.
FSDP and DeepSpeed restore their own sharded checkpoint formats and keep transformers' path.
"""

from __future__ import annotations

from typing import Any


class ResumeWeightsMixin:
    """Mix in before ``transformers.Trainer`` (or a subclass)."""

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        if self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        saved = type(target).from_pretrained(resume_from_checkpoint, dtype=next(target.parameters()).dtype)
        target.load_state_dict(saved.state_dict())  # strict: every parameter of the policy comes back
        return None
