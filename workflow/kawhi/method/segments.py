"""Cut a response into segments and map every token to its segment (METHOD.md section 4).

The response text is the concatenation of its tokens' decoded pieces, so every token owns the
character span [start, start + len(piece)). (Decoding tokens one by one can turn a multi-byte
character split over two tokens into replacement characters, but the delimiter is plain text and is
found the same way in either decoding.) A paragraph runs up to and including the delimiter that
ends it; a token belongs to the paragraph in which its first character lies, so a token that
straddles a cut goes to the paragraph where it starts. Paragraphs without tokens are dropped and
the rest numbered 0..S-1 in order.

Granularities: ``paragraph`` (cut after each ``delimiter``), ``sentence`` (the ablation: cut after
". ", "? ", "! " and after every newline) and ``token`` (each token alone).
"""

from __future__ import annotations

import re
import weakref
from itertools import compress
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

GRANULARITIES = ("paragraph", "sentence", "token")
SENTENCE_END = re.compile(r"[.?!] |\n")


def decode_pieces(tokenizer, completion_ids: Tensor) -> list[list[str]]:
    """Each token decoded on its own ([B][T] strings).

    Only the batch's distinct ids are decoded (one batched tokenizer call), and pieces are cached per
    tokenizer, so a training run decodes each vocabulary entry at most once.
    """
    cache = _piece_cache(tokenizer)
    unique = torch.unique(completion_ids).tolist()
    missing = [i for i in unique if i not in cache]
    if missing:
        texts = tokenizer.batch_decode([[i] for i in missing], skip_special_tokens=False,
                                       clean_up_tokenization_spaces=False)
        cache.update(zip(missing, texts))
    return [[cache[i] for i in row] for row in completion_ids.tolist()]


_CACHES: "weakref.WeakKeyDictionary[Any, dict[int, str]]" = weakref.WeakKeyDictionary()


def _piece_cache(tokenizer: Any) -> dict[int, str]:
    try:
        return _CACHES.setdefault(tokenizer, {})
    except TypeError:  # not weak-referenceable: no cache
        return {}


def delimiter_ends(text: str, delimiter: str) -> list[int]:
    """Character offsets just past each non-overlapping occurrence of ``delimiter`` in ``text``."""
    if not delimiter:
        raise ValueError("kawhi.delimiter must be a non-empty string")
    ends, start = [], text.find(delimiter)
    while start != -1:
        ends.append(start + len(delimiter))
        start = text.find(delimiter, start + len(delimiter))
    return ends


def sentence_ends(text: str) -> list[int]:
    """Character offsets just past each sentence end: ". ", "? ", "! " or a newline."""
    return [match.end() for match in SENTENCE_END.finditer(text)]


def cut_ends(text: str, granularity: str, delimiter: str) -> list[int]:
    """Where ``text`` is cut into segments (paragraph or sentence granularity)."""
    if granularity == "paragraph":
        return delimiter_ends(text, delimiter)
    if granularity == "sentence":
        return sentence_ends(text)
    raise ValueError(f"kawhi.granularity must be one of {GRANULARITIES}, got '{granularity}'")


def paragraph_ids(pieces: Sequence[str], delimiter: str = "\n\n") -> Tensor:
    """Paragraph index (0..S-1, consecutive) of each token, given the tokens' decoded pieces."""
    return segment_ids(pieces, "paragraph", delimiter)


def segment_ids(pieces: Sequence[str], granularity: str = "paragraph", delimiter: str = "\n\n") -> Tensor:
    """Segment index (0..S-1, consecutive) of each token: its paragraph, its sentence, or the token itself."""
    if granularity == "token":
        return torch.arange(len(pieces), dtype=torch.long)
    lengths = torch.tensor([len(p) for p in pieces], dtype=torch.long)
    if lengths.numel() == 0:
        cut_ends("", granularity, delimiter)  # still refuses a bad granularity or delimiter
        return torch.zeros(0, dtype=torch.long)
    starts = torch.cumsum(lengths, 0) - lengths
    ends = torch.tensor(cut_ends("".join(pieces), granularity, delimiter), dtype=torch.long)
    raw = torch.searchsorted(ends, starts, right=True)
    # drop empty segments: renumber the segments that own tokens as 0..S-1 in order
    return torch.unique_consecutive(raw, return_inverse=True)[1]


def batch_segment_ids(pieces: Sequence[Sequence[str]], valid: Tensor, granularity: str = "paragraph",
                      delimiter: str = "\n\n") -> Tensor:
    """[B, T] segment ids for a batch (0..S_b-1 per row on valid tokens, -1 on padding), in a few
    array ops for the whole batch: the rows' valid pieces are laid end to end and every row start
    counts as one more cut, so one searchsorted + one renumbering serves all rows (numpy: the
    bookkeeping is a handful of small integer ops, cheaper there than as tensor ops)."""
    batch, width = valid.shape
    keep = valid.bool().cpu().numpy()
    seg = np.full((batch, width), -1, dtype=np.int64)
    counts = keep.sum(axis=1)
    if not counts.any():
        return torch.from_numpy(seg)
    if granularity == "token":
        rank = np.cumsum(keep, axis=1, dtype=np.int64) - 1
        return torch.from_numpy(np.where(keep, rank, -1))
    kept = [list(compress(row, ks)) for row, ks in zip(pieces, keep.tolist())]
    lengths = np.fromiter((len(p) for row in kept for p in row), dtype=np.int64, count=int(counts.sum()))
    starts = np.cumsum(lengths) - lengths
    cuts, offset = [], 0
    for row in kept:
        text = "".join(row)
        cuts.append(offset)  # a row start is a cut: segments never span rows
        cuts.extend(offset + e for e in cut_ends(text, granularity, delimiter))
        offset += len(text)
    raw = np.searchsorted(np.asarray(cuts, dtype=np.int64), starts, side="right")
    # raw is non-decreasing, so np.unique's inverse numbers its runs 0, 1, 2, ... in order
    global_ids = np.unique(raw, return_inverse=True)[1].reshape(-1)
    row_of = np.repeat(np.arange(batch), counts)
    first = np.zeros(batch, dtype=np.int64)  # each row's first valid token opens its first segment
    present = counts > 0
    first[present] = global_ids[(np.cumsum(counts) - counts)[present]]
    seg[keep] = global_ids - first[row_of]
    return torch.from_numpy(seg)


def segment_texts(pieces: Sequence[str], ids: Tensor) -> list[str]:
    """The text of each segment (its tokens' pieces joined), for display."""
    texts = [""] * (int(ids.max()) + 1 if ids.numel() else 0)
    for piece, s in zip(pieces, ids.tolist()):
        texts[s] += piece
    return texts
