"""kawhi.train.lm_head: TRL's fused LM head projects only the labelled positions on CPU, with the same log-probs."""

from __future__ import annotations

import ast
import inspect

import pytest
import torch

trl_utils = pytest.importorskip("trl.trainer.utils")

from kawhi.train.lm_head import compact_lm_head_on_cpu  # noqa: E402


@pytest.fixture
def restore_trl(monkeypatch):
    """Each test starts from TRL's own predicate and leaves TRL as it found it."""
    # an in-process train_run may have hooked it already
    original = getattr(trl_utils._use_triton, "trl_decides", trl_utils._use_triton)
    monkeypatch.setattr(trl_utils, "_use_triton", original)
    return original


def tiny_lm():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = Qwen2ForCausalLM(config)
    trl_utils.add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))
    return model


def fused_pass(model, rows_seen: list[int], monkeypatch):
    """Log-probs, entropies and the LM head's gradient of a batch whose first 9 positions are prompt."""
    apply = trl_utils._ChunkedLogProbFunction.apply

    def counting_apply(hidden, *args):
        rows_seen.append(hidden.shape[0])
        return apply(hidden, *args)

    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, 97, (3, 16), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, 13:] = 0  # a shorter response: trailing padding
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    labels[:, :9] = -100
    model.zero_grad()
    with monkeypatch.context() as patch:
        patch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting_apply)
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True)
        (out.log_probs.sum() + out.entropy.sum()).backward()
    return out.log_probs.detach(), out.entropy.detach(), model.lm_head.weight.grad.clone(), int(out.label_mask.sum())


def test_the_hook_compacts_on_cpu_and_gives_the_same_log_probs(restore_trl, monkeypatch):
    model = tiny_lm()
    full_rows: list[int] = []
    full = fused_pass(model, full_rows, monkeypatch)
    compact_lm_head_on_cpu()
    compact_rows: list[int] = []
    compact = fused_pass(model, compact_rows, monkeypatch)

    labelled = full[3]
    assert full_rows == [3 * 15], "TRL 1.16 scores every position on CPU; if it no longer does, drop the hook"
    assert compact_rows == [labelled] == [7 + 7 + 4]  # next-token labels 9..15, row 2's only to 12
    torch.testing.assert_close(compact[0], full[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(compact[1], full[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(compact[2], full[2], rtol=1e-5, atol=1e-6)
    assert (compact[0] == 0).sum() == (full[0] == 0).sum()  # unlabelled positions stay exactly zero


def test_the_hook_is_idempotent_and_leaves_other_devices_to_trl(restore_trl):
    compact_lm_head_on_cpu()
    hooked = trl_utils._use_triton
    compact_lm_head_on_cpu()
    assert trl_utils._use_triton is hooked
    assert hooked(torch.device("cpu")) is True
    for device in ("cuda", "xpu", "meta"):
        assert hooked(torch.device(device)) == restore_trl(torch.device(device))


def test_trl_reads_the_hooked_name_only_for_the_compact_decision():
    """The hook replaces ``trl.trainer.utils._use_triton``: anything else reading that name would change too."""
    tree = ast.parse(inspect.getsource(trl_utils))
    reads = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == "_use_triton"]
    assert len(reads) == 1, f"trl.trainer.utils now reads _use_triton {len(reads)} times: review kawhi.train.lm_head"
    assigns = [node for node in ast.walk(tree) if isinstance(node, ast.Assign)
               and any(isinstance(t, ast.Name) and t.id == "compact" for t in node.targets)]
    assert len(assigns) == 1 and ast.unparse(assigns[0].value) == "_use_triton(hidden_states.device)"


def test_the_benchmark_compares_both_heads_on_real_jobs(train_job_benchmark):
    """benchmarks/lm_head_compact.py end to end, smallest size: one 1-step `kawhi train` job per setting; the
    compact head's weights stay within round-off of the full head's."""
    last = train_job_benchmark("lm_head_compact.py")
    assert last[0::2] == ["lm_head_wall_ratio", "user_ratio", "max_weight_diff"]
    assert float(last[1]) > 0 and float(last[3]) > 0
    assert 0 <= float(last[5]) < 1e-4
