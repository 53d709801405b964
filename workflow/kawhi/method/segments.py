"""Cut a response into segments and map every token to its segment (METHOD.md section 3).

The response text is the concatenation of its tokens' decoded pieces, so every token owns the
character span [start, start + len(piece)). (Decoding tokens one by one can turn a multi-byte
character split over two tokens into replacement characters, but the delimiter is plain text and is
found the same way in either decoding.) A paragraph runs up to and including the delimiter that
ends it; a token belongs to the paragraph in which its first character lies, so a token that
straddles a cut goes to the paragraph where it starts. Paragraphs without tokens are dropped and
the rest numbered 0..S-1 in order.
"""

from __future__ import annotations

import weakref
from typing import Any, Sequence

import torch
from torch import Tensor

GRANULARITIES = ("paragraph", "token")


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


def paragraph_ids(pieces: Sequence[str], delimiter: str = "\n\n") -> Tensor:
    """Paragraph index (0..S-1, consecutive) of each token, given the tokens' decoded pieces."""
    lengths = torch.tensor([len(p) for p in pieces], dtype=torch.long)
    if lengths.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    starts = torch.cumsum(lengths, 0) - lengths
    ends = torch.tensor(delimiter_ends("".join(pieces), delimiter), dtype=torch.long)
    raw = torch.searchsorted(ends, starts, right=True)
    # drop empty paragraphs: renumber the paragraphs that own tokens as 0..S-1 in order
    return torch.unique_consecutive(raw, return_inverse=True)[1]


def segment_ids(pieces: Sequence[str], granularity: str = "paragraph", delimiter: str = "\n\n") -> Tensor:
    """Segment index of each token: its paragraph, or the token itself for ``granularity='token'``."""
    if granularity == "paragraph":
        return paragraph_ids(pieces, delimiter)
    if granularity == "token":
        return torch.arange(len(pieces), dtype=torch.long)
    raise ValueError(f"kawhi.granularity must be one of {GRANULARITIES}, got '{granularity}'")


def segment_texts(pieces: Sequence[str], ids: Tensor) -> list[str]:
    """The text of each segment (its tokens' pieces joined), for display."""
    texts = [""] * (int(ids.max()) + 1 if ids.numel() else 0)
    for piece, s in zip(pieces, ids.tolist()):
        texts[s] += piece
    return texts
