"""The head-ablation sweep: a head made vision-critical by construction is found; outputs are complete."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from PIL import Image

from kawhi.heads.sweep import (
    load_model_and_processor,
    encode_benchmark,
    run_sweep,
    score_by_generation,
    score_model,
    select_heads,
    yes_no_token_ids,
)
from kawhi.method.heads import decoder_layers, head_dim, num_query_heads

CRITICAL_HEAD = 5
COLOURS = {"red": (220, 20, 20), "blue": (20, 20, 220)}


def colour_rows(n_images: int = 8) -> list[dict]:
    """MME-style rows whose answers depend on the image only: two phrasings of "is it red?" per image."""
    rows = []
    for i in range(n_images):
        red = i % 2 == 0
        image = Image.new("RGB", (32, 32), COLOURS["red" if red else "blue"])
        category = ("color", "existence")[(i // 2) % 2]
        for question in ("Is the image red?", "Is the picture red?"):
            rows.append({"question_id": f"{category}/{i:04d}.png", "image": image, "question": question,
                         "answer": "Yes" if red else "No", "category": category})
    return rows


def write_parquet(rows: list[dict], path):
    import datasets

    features = datasets.Features({"question_id": datasets.Value("string"), "image": datasets.Image(),
                                  "question": datasets.Value("string"), "answer": datasets.Value("string"),
                                  "category": datasets.Value("string")})
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))
    return path


def train_to_read_the_image_through(model, prepared, head: int, max_epochs: int = 100) -> None:
    """Fit the colour questions with every other head's o_proj columns held at zero.

    Then only ``head`` moves information between positions, so it alone carries the image to the
    answer position: masking it must drop the score, masking any other head must change nothing.
    """
    layers, d = decoder_layers(model), head_dim(model)
    others = [c for h in range(num_query_heads(model)) if h != head for c in range(h * d, (h + 1) * d)]

    def zero_other_heads():
        with torch.no_grad():
            for layer in layers:
                layer.self_attn.o_proj.weight[:, others] = 0

    zero_other_heads()
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(max_epochs):
        losses = []
        for batch, idx in zip(prepared.batches, prepared.order):
            target = torch.tensor([prepared.yes_ids[0] if prepared.meta[i]["answer"] == "Yes"
                                   else prepared.no_ids[0] for i in idx])
            logits = model(**batch, use_cache=False, logits_to_keep=1).logits[:, -1]
            loss = torch.nn.functional.cross_entropy(logits.float(), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            zero_other_heads()
            losses.append(loss.item())
        if max(losses) < 0.05:
            return
    raise AssertionError(f"the tiny model did not learn the colour questions (loss {max(losses):.3f})")


@pytest.fixture(scope="module")
def critical_model(tiny_model_dir, tmp_path_factory):
    """(saved model dir, model, processor, prepared benchmark) with head CRITICAL_HEAD vision-critical."""
    model, processor = load_model_and_processor(tiny_model_dir, device="cpu")
    assert num_query_heads(model) > CRITICAL_HEAD
    prepared = encode_benchmark(processor, colour_rows(), batch_size=8)
    model.train()
    train_to_read_the_image_through(model, prepared, CRITICAL_HEAD)
    model.eval()
    out = tmp_path_factory.mktemp("critical") / "model"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out, model, processor, prepared


def test_the_head_made_vision_critical_is_found(critical_model):
    _, model, _, prepared = critical_model
    result = run_sweep(model, prepared, progress=False)
    assert result.baseline["total"] == pytest.approx(400.0)  # two categories, every answer right
    drops = result.drops
    assert len(drops) == num_query_heads(model)
    assert drops[CRITICAL_HEAD] >= 200.0  # a constant answer per question: acc 50, acc+ <= 50
    assert all(d == 0.0 for h, d in enumerate(drops) if h != CRITICAL_HEAD)
    assert select_heads(drops, threshold=50.0, top_k=2) == ([CRITICAL_HEAD], "threshold")


def test_masking_none_reproduces_the_baseline_exactly(critical_model):
    _, model, _, prepared = critical_model
    first = score_model(model, prepared)
    assert score_model(model, prepared, []) == first
    assert score_model(model, prepared, [CRITICAL_HEAD]) != first


def test_masking_a_head_changes_scores_of_an_untrained_model(tiny_model_dir):
    model, processor = load_model_and_processor(tiny_model_dir, device="cpu")
    prepared = encode_benchmark(processor, colour_rows(16), batch_size=32)
    baseline_logits = _answer_logits(model, prepared)
    changed = 0
    from kawhi.method.heads import mask_heads

    for h in range(num_query_heads(model)):
        with mask_heads(model, [h]):
            changed += not torch.equal(_answer_logits(model, prepared), baseline_logits)
    assert changed == num_query_heads(model)
    assert torch.equal(_answer_logits(model, prepared), baseline_logits)


def _answer_logits(model, prepared):
    with torch.no_grad():
        return torch.cat([model(**b, use_cache=False, logits_to_keep=1).logits[:, -1] for b in prepared.batches])


def test_batching_does_not_change_predictions(critical_model):
    _, model, processor, prepared = critical_model
    one_batch = encode_benchmark(processor, colour_rows(), batch_size=64)
    assert score_model(model, one_batch) == score_model(model, prepared)


def test_yes_no_tokens_are_distinct(critical_model):
    _, _, processor, _ = critical_model
    yes_ids, no_ids = yes_no_token_ids(processor.tokenizer)
    assert yes_ids and no_ids and not set(yes_ids) & set(no_ids)
    assert processor.tokenizer.decode(yes_ids[:1]).strip().lower().startswith("y")


def test_generation_path_scores_the_same_rows(critical_model):
    _, model, processor, _ = critical_model
    scores = score_by_generation(model, processor, colour_rows(4), batch_size=4, max_new_tokens=2)
    assert set(scores) == {"total", "perception", "cognition", "per_category"}
    assert sum(v["n_questions"] for v in scores["per_category"].values()) == 8


@pytest.mark.parametrize("drops,threshold,top_k,expected", [
    ([0, 60, 10, 51], 50, 2, ([1, 3], "threshold")),
    ([0, 20, 10, 30], 50, 2, ([1, 3], "top_k")),
    ([5, 5, 5, 5], 50, 1, ([0], "top_k")),          # ties go to the lower index
    ([0, 50, 10], 50, 1, ([1], "top_k")),            # "exceeds" is strict
])
def test_selection_rule(drops, threshold, top_k, expected):
    assert select_heads(drops, threshold, top_k) == expected


def test_command_writes_all_outputs(critical_model, tmp_path):
    from kawhi.cli import main

    model_dir, model, _, _ = critical_model
    bench = write_parquet(colour_rows(), tmp_path / "test.parquet")
    out = tmp_path / "heads"
    settings = {"threshold": 50.0, "top_k": 2, "batch_size": 8, "benchmark": "mme_synth", "seed": 0,
                "model": "tiny-critical"}
    assert main(["identify-heads", "--model", str(model_dir), "--bench", str(bench), "--out-dir", str(out),
                 "--settings", json.dumps(settings)]) == 0
    summary = json.loads((out / "critical_heads.json").read_text())
    assert summary["heads"] == [CRITICAL_HEAD]
    assert summary["selected_by"] == "threshold"
    assert summary["model"] == "tiny-critical"
    assert summary["baseline"] == pytest.approx(400.0)
    assert summary["threshold"] == 50.0
    assert len(summary["drops"]) == num_query_heads(model)
    assert {"config_hash", "seed", "packages", "git_revision"} <= set(summary["provenance"])
    table = pd.read_csv(out / "ablation.csv")
    assert list(table.columns) == ["head", "total", "perception", "cognition", "drop"]
    assert table["head"].tolist() == list(range(num_query_heads(model)))
    assert table.loc[CRITICAL_HEAD, "drop"] == pytest.approx(summary["drops"][CRITICAL_HEAD])
    assert (out / "figure3.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "figure3.pdf").read_bytes()[:4] == b"%PDF"

    # an impossible threshold falls back to the top-k largest drops, and says so
    assert main(["identify-heads", "--model", str(model_dir), "--bench", str(bench), "--out-dir", str(out),
                 "--settings", json.dumps(settings), "--threshold", "1000", "--top-k", "1"]) == 0
    summary = json.loads((out / "critical_heads.json").read_text())
    assert summary["heads"] == [CRITICAL_HEAD]
    assert summary["selected_by"] == "top_k"
    assert summary["threshold"] == 1000.0


def test_vision_replay_gives_the_same_sweep_and_runs_the_tower_once_per_batch(critical_model):
    from kawhi.heads.sweep import vision_tower

    _, model, _, prepared = critical_model
    tower = vision_tower(model)
    calls = []
    # the tower's first sub-module runs only when the tower really computes
    handle = tower.patch_embed.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        replayed = run_sweep(model, prepared, progress=False, cache_vision=True)
        n_replayed = len(calls)
        recomputed = run_sweep(model, prepared, progress=False, cache_vision=False)
    finally:
        handle.remove()
    assert n_replayed == len(prepared.batches)  # only the unmasked pass ran the vision tower
    assert len(calls) - n_replayed == len(prepared.batches) * (num_query_heads(model) + 1)
    assert replayed.baseline == recomputed.baseline
    assert replayed.per_head == recomputed.per_head
    assert "forward" not in tower.__dict__  # the tower's own forward is back


def test_mme_own_instruction_is_not_repeated(critical_model):
    from kawhi.heads.sweep import prompt_text

    _, _, processor, _ = critical_model
    mme_style = prompt_text(processor, "Is there a dog in the image? Please answer yes or no.")
    plain = prompt_text(processor, "Is there a dog in the image?")
    assert mme_style == plain
    assert plain.count("Please answer yes or no.") == 1
