"""The private GRPOTrainer methods our trainer overrides still look as they did when we wrote the overrides.

TRL does not keep private methods stable between minor versions, which is why pyproject.toml pins `trl` to one
minor version. When an upgrade changes one of these methods, this test fails and names it: read TRL's new
method, adapt the override in kawhi/train, then update RECORDED (and the pin).
"""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

import pytest

trl = pytest.importorskip("trl")

RECORDED_WITH = "1.16"
# name -> parameters as (name, kind, default), recorded from trl 1.16's GRPOTrainer
RECORDED = {
    "_calculate_rewards": [("self", "POSITIONAL_OR_KEYWORD", None), ("inputs", "POSITIONAL_OR_KEYWORD", None),
                           ("prompts", "POSITIONAL_OR_KEYWORD", None), ("completions", "POSITIONAL_OR_KEYWORD", None),
                           ("completion_ids_list", "POSITIONAL_OR_KEYWORD", None)],
    "_generate_and_score_completions": [("self", "POSITIONAL_OR_KEYWORD", None),
                                        ("inputs", "POSITIONAL_OR_KEYWORD", None)],
    "_compute_loss": [("self", "POSITIONAL_OR_KEYWORD", None), ("model", "POSITIONAL_OR_KEYWORD", None),
                      ("inputs", "POSITIONAL_OR_KEYWORD", None)],
    "_get_per_token_logps_and_entropies": [
        ("self", "POSITIONAL_OR_KEYWORD", None), ("model", "POSITIONAL_OR_KEYWORD", None),
        ("input_ids", "POSITIONAL_OR_KEYWORD", None), ("attention_mask", "POSITIONAL_OR_KEYWORD", None),
        ("logits_to_keep", "POSITIONAL_OR_KEYWORD", None), ("batch_size", "POSITIONAL_OR_KEYWORD", "None"),
        ("compute_entropy", "POSITIONAL_OR_KEYWORD", "False"), ("compute_aux_loss", "POSITIONAL_OR_KEYWORD", "False"),
        ("pixel_values", "POSITIONAL_OR_KEYWORD", "None"), ("image_grid_thw", "POSITIONAL_OR_KEYWORD", "None"),
        ("num_images", "POSITIONAL_OR_KEYWORD", "None"), ("pixel_attention_mask", "POSITIONAL_OR_KEYWORD", "None"),
        ("spatial_shapes", "POSITIONAL_OR_KEYWORD", "None"), ("num_tiles", "POSITIONAL_OR_KEYWORD", "None"),
        ("image_sizes", "POSITIONAL_OR_KEYWORD", "None"), ("token_type_ids", "POSITIONAL_OR_KEYWORD", "None"),
        ("mm_token_type_ids", "POSITIONAL_OR_KEYWORD", "None"),
        ("image_position_ids", "POSITIONAL_OR_KEYWORD", "None")],
    "_get_train_sampler": [("self", "POSITIONAL_OR_KEYWORD", None), ("dataset", "POSITIONAL_OR_KEYWORD", "None")],
    "_load_from_checkpoint": [("self", "POSITIONAL_OR_KEYWORD", None), ("resume_from_checkpoint", "POSITIONAL_OR_KEYWORD", None), ("model", "POSITIONAL_OR_KEYWORD", "None")],
}


def parameters(function) -> list[tuple[str, str, str | None]]:
    """A signature without annotations (their rendering changes between Python versions, their meaning does not)."""
    return [(p.name, p.kind.name, None if p.default is inspect.Parameter.empty else repr(p.default))
            for p in inspect.signature(function).parameters.values()]


def overridden_private_methods() -> set[str]:
    """Every ``_private`` GRPOTrainer method that a class of ours in KawhiGRPOTrainer's MRO redefines."""
    from trl import GRPOTrainer

    from kawhi.train.trainer import KawhiGRPOTrainer

    return {name for cls in KawhiGRPOTrainer.__mro__ if cls.__module__.startswith("kawhi.")
            for name in vars(cls) if name.startswith("_") and not name.startswith("__") and hasattr(GRPOTrainer, name)}


def test_every_override_is_recorded():
    unrecorded = overridden_private_methods() - set(RECORDED)
    assert not unrecorded, f"kawhi overrides private GRPOTrainer methods {sorted(unrecorded)}: record their signatures here"


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_trl_still_has_the_method_we_override(name):
    from trl import GRPOTrainer

    assert hasattr(GRPOTrainer, name), f"trl {trl.__version__} has no GRPOTrainer.{name}: our override is dead code now"
    assert parameters(getattr(GRPOTrainer, name)) == RECORDED[name], (
        f"trl {trl.__version__} changed GRPOTrainer.{name} (recorded with trl {RECORDED_WITH}); "
        f"adapt kawhi/train's override, then update RECORDED and the trl pin in pyproject.toml")


def test_the_pin_is_the_recorded_minor_version():
    from packaging.requirements import Requirement
    from packaging.version import Version

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    pin = next(Requirement(d) for d in pyproject["project"]["dependencies"] if Requirement(d).name == "trl")
    assert Version(trl.__version__) in pin.specifier, f"installed trl {trl.__version__} is outside the pin {pin}"
    allowed = [v for v in (f"{RECORDED_WITH}.0", f"{RECORDED_WITH}.99") if Version(v) in pin.specifier]
    assert allowed and not Version(f"{RECORDED_WITH.split('.')[0]}.{int(RECORDED_WITH.split('.')[1]) + 1}.0") \
        in pin.specifier, f"pin {pin} must allow exactly trl {RECORDED_WITH}.x"


def test_a_changed_signature_is_caught():
    def changed(self, inputs, prompts, completions):  # completion_ids_list dropped
        pass

    assert parameters(changed) != RECORDED["_calculate_rewards"]
