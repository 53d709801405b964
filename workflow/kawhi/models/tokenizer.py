"""A small byte-level BPE tokenizer for the tiny Qwen-VL-class models, trained locally.

It is the Qwen2 tokenizer in everything but size: the same pre-tokenizer (Qwen2's split regex, which
puts every digit in its own piece, then byte-level), the same NFC normaliser and byte-level decoder,
the same special tokens and a Qwen-style chat template. Only the merges are learnt here, from a
generated corpus that covers the synthetic suites' vocabulary, so the prompts stay short and nothing
is downloaded. It is wrapped in transformers' ``Qwen2Tokenizer`` so a saved tiny model looks to every
loader exactly like a real Qwen-VL checkpoint.
"""

from __future__ import annotations

import itertools
import random
from typing import Iterable, Iterator

from kawhi.data.prompts import OPTION_LETTERS, REASONING_INSTRUCTION, YES_NO_INSTRUCTION

# The special tokens of Qwen2.5-VL / Qwen3-VL, in their order (the real models put them at the end of
# the vocabulary; here they come first, which no code depends on).
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
    "<|quad_start|>", "<|quad_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
PAD_TOKEN = "<|endoftext|>"
EOS_TOKEN = "<|im_end|>"

# Qwen's template without the default system turn (Qwen3-VL style: fewer prompt tokens on CPU).
# Images and videos render as <|vision_start|><|image_pad|><|vision_end|>; the processor expands the
# pad token to one token per merged visual patch. {% generation %} marks assistant tokens, which lets
# a trainer use ``assistant_only_loss``.
CHAT_TEMPLATE = (
    "{%- macro render_content(content) -%}"
    "{%- if content is string -%}{{- content -}}"
    "{%- else -%}{%- for part in content -%}"
    "{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif part['type'] == 'video' or 'video' in part -%}"
    "{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in part -%}{{- part['text'] -}}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- generation -%}{{- render_content(message['content']) + '<|im_end|>' -}}{%- endgeneration -%}"
    "{%- else -%}{{- render_content(message['content']) + '<|im_end|>' -}}{%- endif -%}"
    "{{- '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# Words of the synthetic suites (shapes, charts, MME-style yes/no) and of their solutions.
_COLORS = ("red", "green", "blue", "yellow", "purple", "orange", "black", "white", "gray", "pink", "brown")
_SHAPES = ("square", "circle", "triangle", "rectangle", "star", "shape", "object", "bar", "line", "point")
_POSITIONS = ("top left", "top right", "bottom left", "bottom right", "left", "right", "top", "bottom",
              "above", "below", "middle", "center", "cell", "cells", "empty", "row", "column")
_CHART_WORDS = ("chart", "bar chart", "line chart", "value", "values", "highest", "lowest", "largest",
                "smallest", "difference", "total", "sum", "average", "maximum", "minimum", "label",
                "category", "series", "axis", "x-axis", "y-axis", "month", "year", "increase", "decrease",
                "between", "from", "to", "at", "of", "the", "in", "is", "are", "than", "more", "fewer",
                "less", "most", "least", "greater", "equal", "times", "plus", "minus")
_QUESTIONS = (
    "How many shapes are in the picture?", "How many {c} shapes are in the picture?",
    "How many more {c} shapes than {d} shapes are in the picture?", "What colour is the {s}?",
    "What color is the {s} in the {p} cell?", "Which bar is the highest?", "Which bar is the lowest?",
    "What is the value of the {c} bar?", "What is the difference between the {c} bar and the {d} bar?",
    "At which point is the {c} line highest?", "Which line is higher at point {n}?",
    "Is there a {c} {s} in the picture?", "Are there {n} shapes in the picture?",
    "Is the {c} {s} on the {p}?", "Is the {s} {c}?", "What is the sum of the values?",
)
_SOLUTIONS = (
    "Cells: {c}, empty, {d}, {c}.", "Cells: {c} {s}, empty, {d} {s}, empty.", "{C}: {n}.", "Shapes: {n}.",
    "{n} - {m} = {k}.", "{n} + {m} = {k}.", "{C} bar: {n}.", "{C} at point {n}: {m}.",
    "The {c} bar is the highest.", "The answer is \\boxed{{{n}}}.", "The answer is \\boxed{{{L}}}.",
    "The answer is \\boxed{{{c}}}.", "There are {n} {c} shapes.", "So the answer is {n}.",
)


def _fill(template: str, rng: random.Random) -> str:
    color, other = rng.sample(_COLORS, 2)
    return template.format(
        c=color, d=other, C=color.capitalize(), s=rng.choice(_SHAPES), p=rng.choice(_POSITIONS),
        n=rng.randint(0, 20), m=rng.randint(0, 20), k=rng.randint(0, 40), L=rng.choice(OPTION_LETTERS[:4]),
    )


def tokenizer_corpus(n_documents: int = 3000, seed: int = 0, extra: Iterable[str] = ()) -> Iterator[str]:
    """Generated documents: chat-formatted questions, options and reasoning with the suites' words.

    Deterministic for a seed, so the tokenizer (and the model built on it) is too.
    """
    rng = random.Random(seed)
    yield from extra
    yield " ".join(itertools.chain(_COLORS, _SHAPES, _POSITIONS, _CHART_WORDS))
    for _ in range(n_documents):
        question = _fill(rng.choice(_QUESTIONS), rng)
        if rng.random() < 0.3:
            instruction = YES_NO_INSTRUCTION
            answer = rng.choice(("Yes", "No", "yes", "no"))
        else:
            options = [str(rng.randint(0, 20)) if rng.random() < 0.6 else rng.choice(_COLORS) for _ in range(4)]
            question += "\nOptions:\n" + "\n".join(f"({OPTION_LETTERS[i]}) {o}" for i, o in enumerate(options))
            instruction = REASONING_INSTRUCTION
            steps = [_fill(rng.choice(_SOLUTIONS), rng) for _ in range(rng.randint(1, 3))]
            answer = "\n\n".join(steps + [_fill("The answer is \\boxed{{{n}}}.", rng)])
        yield (f"<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{question}\n{instruction}"
               f"<|im_end|>\n<|im_start|>assistant\n{answer}<|im_end|>\n")


def train_tokenizer(vocab_size: int = 1024, seed: int = 0, extra_texts: Iterable[str] = ()):
    """A ``transformers.Qwen2Tokenizer`` whose BPE merges are learnt on :func:`tokenizer_corpus`.

    ``vocab_size`` counts everything: the 256 byte symbols, the special tokens and the merges.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    minimum = len(pre_tokenizers.ByteLevel.alphabet()) + len(SPECIAL_TOKENS)
    if vocab_size < minimum:
        raise ValueError(f"tiny.vocab_size={vocab_size} is below the {minimum} byte and special tokens it needs")

    # The same pipeline Qwen2Tokenizer builds, so the saved tokenizer re-loads identically.
    tok = Tokenizer(BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False,
                        byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=2,
                                  show_progress=False)
    # Special tokens inside the corpus must not be learnt as byte pieces: cut them out first.
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    tok.train_from_iterator(tokenizer_corpus(seed=seed, extra=extra_texts), trainer=trainer)

    model = tok.get_vocab()
    merges = _merges_of(tok)
    tokenizer = Qwen2Tokenizer(vocab=model, merges=merges, unk_token=None, bos_token=None,
                               eos_token=EOS_TOKEN, pad_token=PAD_TOKEN)
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.model_max_length = 4096
    return tokenizer


def _merges_of(tok) -> list[tuple[str, str]]:
    import json

    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
            for m in json.loads(tok.to_str())["model"]["merges"]]
