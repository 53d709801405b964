"""TRL's fused LM head scores only the response positions on CPU too, as it already does on GPU.

GRPOTrainer (TRL 1.16) computes the per-token log-probs through a fused LM head
(``trl.trainer.utils.add_fused_lm_head``). On devices with Triton it projects only the positions whose label is
not -100, i.e. the response tokens. Elsewhere it projects every position (prompt, image tokens and padding too)
and zeroes the rest afterwards. The reason is compiled backends such as Neuron: there a row count that changes
from batch to batch recompiles the tiles. Eager CPU has no compilation. On the embedded grid's training step
(32 rollouts of ~103 tokens, at most 48 of them response) the full projection with its backward was ~17 % of the
step, so it went on positions whose results are then thrown away.

``compact_lm_head_on_cpu()`` makes the head take its compact path on CPU as well. The log-probs of the scored
positions are the same computation on fewer rows. The LM head's weight gradient sums fewer zero rows, so it can
differ in the last bits: after the grid's 40-step GRPO+KAWHI run the weights differed by at most 1.7e-5. On GPU
nothing changes: TRL compacts there already.

The hook replaces the one name that decision reads, ``trl.trainer.utils._use_triton``, with a function that says
yes on CPU and defers to TRL's own answer on every other device. ``tests/test_lm_head.py`` checks that TRL reads
that name only for this decision and that the compact path gives the same log-probs; when a TRL upgrade changes
either, that test fails. The pipeline's training stage (``kawhi.train.run.train_run``) turns it on. A script
that uses ``KawhiGRPOTrainer`` on its own keeps TRL's behaviour unless it calls this function too.
"""

from __future__ import annotations


def compact_lm_head_on_cpu() -> None:
    """Make TRL's fused LM head project only the labelled positions on CPU (idempotent)."""
    import trl.trainer.utils as trl_utils

    trl_decides = trl_utils._use_triton
    if hasattr(trl_decides, "trl_decides"):  # hooked already
        return

    def compact(device) -> bool:
        return device.type == "cpu" or trl_decides(device)

    compact.trl_decides = trl_decides  # TRL's own predicate, to undo the hook
    trl_utils._use_triton = compact
