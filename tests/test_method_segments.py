"""Segments: paragraphs by character offsets, straddling tokens, and a real byte-level tokenizer."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kawhi.method.segments import (batch_segment_ids, decode_pieces, delimiter_ends, paragraph_ids, segment_ids,
                                   segment_texts)


def test_paragraphs_by_character_offsets():
    pieces = ["Step", " one", ".\n\n", "Step", " two", "\n", "\n", "Done"]
    # ".\n\n" ends paragraph 0; the split "\n","\n" delimiter ends paragraph 1 at the second "\n"
    assert paragraph_ids(pieces).tolist() == [0, 0, 0, 1, 1, 1, 1, 2]


def test_straddling_token_goes_where_it_starts():
    pieces = ["A", "b\n", "\nC", "d"]  # the cut is inside "\nC", which starts in paragraph 0
    assert paragraph_ids(pieces).tolist() == [0, 0, 0, 1]
    pieces = ["A", "\n\nB", "c"]  # "\n\nB" starts before the cut: paragraph 0
    assert paragraph_ids(pieces).tolist() == [0, 0, 1]


def test_empty_paragraphs_are_dropped_and_ids_consecutive():
    pieces = ["a", "\n\n", "\n\n", "\n\n", "b", "\n\n"]
    assert paragraph_ids(pieces).tolist() == [0, 0, 1, 2, 3, 3]
    pieces = ["a", "\n\n\n\n\n\n", "b"]
    assert paragraph_ids(pieces).tolist() == [0, 0, 1]


def test_custom_delimiter_and_token_granularity():
    pieces = ["x", ";", "y", ";", "z"]
    assert segment_ids(pieces, "paragraph", ";").tolist() == [0, 0, 1, 1, 2]
    assert segment_ids(pieces, "token").tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="granularity"):
        segment_ids(pieces, "clause")
    with pytest.raises(ValueError, match="delimiter"):
        delimiter_ends("abc", "")


def test_sentences_end_at_stop_marks_and_newlines():
    pieces = ["It", " is", " 3.", " So", " x", "=3?", " Yes", "!", " Done", "\n", "Next", ".", "5", " ok"]
    # cuts after ". ", "? ", "! " (the space belongs to the sentence it ends) and after every newline, and a
    # token goes where its first character lies: " So" starts with the space of ". ", so it stays in
    # sentence 0 (METHOD.md's rule, literally). "." followed by "5" is no sentence end.
    assert segment_ids(pieces, "sentence").tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 4, 4, 4, 4]
    paragraphs = ["First step. Then", " more.\n\n", "Last."]
    assert segment_ids(paragraphs, "sentence").tolist() == [0, 1, 2]
    assert segment_ids(paragraphs, "paragraph").tolist() == [0, 0, 1]
    valid = torch.ones(2, 3, dtype=torch.bool)
    valid[1, 2] = False
    batched = batch_segment_ids([paragraphs, ["A. B", ". C", "pad"]], valid, "sentence")
    assert batched.tolist() == [[0, 1, 2], [0, 1, -1]]


@given(st.lists(st.text(alphabet="ab\n ", min_size=1, max_size=4), min_size=1, max_size=30))
def test_paragraphs_match_splitting_the_text(pieces):
    ids = paragraph_ids(pieces)
    assert ids.numel() == len(pieces)
    assert ids[0] == 0 and bool((ids.diff() >= 0).all()) and bool((ids.diff() <= 1).all())
    text = "".join(pieces)
    n_cuts_before_last_token = len(delimiter_ends(text[: len(text) - len(pieces[-1])], "\n\n"))
    assert int(ids[-1]) <= n_cuts_before_last_token
    joined = segment_texts(pieces, ids)
    assert "".join(joined) == text
    # a new segment starts only after a cut that lies past the previous segment's start
    starts = [sum(len(t) for t in joined[:i]) for i in range(len(joined))]
    ends = delimiter_ends(text, "\n\n")
    assert all(any(a < e <= b for e in ends) for a, b in zip(starts, starts[1:]))


@pytest.fixture(scope="module")
def byte_level_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["The red circle is left.\n\nSo the answer is 3.\n\nThe answer is \\boxed{3}.", "Größe ≈ 5 cm"] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def test_real_tokenizer_pieces_rebuild_the_text_and_cut_paragraphs(byte_level_tokenizer):
    text = "The red circle is left.\n\nSo Größe ≈ 5.\n\nThe answer is \\boxed{3}."
    ids = byte_level_tokenizer(text)["input_ids"]
    pieces = decode_pieces(byte_level_tokenizer, torch.tensor([ids]))[0]
    assert len(pieces) == len(ids)
    seg = paragraph_ids(pieces)
    assert int(seg.max()) == 2
    texts = segment_texts(pieces, seg)
    assert texts[0].startswith("The red circle") and texts[2].endswith("\\boxed{3}.")
    assert "So" in texts[1] and "answer" not in texts[1]


@given(st.lists(st.lists(st.sampled_from(["a", "b ", "\n", "\n\n", ".\n\nc"]), min_size=0, max_size=12),
                min_size=1, max_size=5),
       st.sampled_from(["paragraph", "token"]))
def test_batch_segment_ids_equal_row_by_row(rows, granularity):
    from kawhi.method.segments import batch_segment_ids

    width = max(len(r) for r in rows) + 2
    pieces = [r + ["<pad>"] * (width - len(r)) for r in rows]
    valid = torch.tensor([[i < len(r) for i in range(width)] for r in rows])
    seg = batch_segment_ids(pieces, valid, granularity)
    for b, r in enumerate(rows):
        expected = segment_ids(r, granularity) if r else torch.zeros(0, dtype=torch.long)
        assert seg[b, : len(r)].tolist() == expected.tolist()
        assert bool((seg[b, len(r):] == -1).all())
