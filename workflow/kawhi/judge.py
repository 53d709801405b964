"""Optional LLM judge for the benchmarks whose official scoring uses one (MathVista's answer
extraction, MathVerse's extraction and equivalence check, CharXiv's grading), and for those the paper
judges although their official scorer is rule-based (MathVision: the paper judges MathVista, MathVerse
and MathVision with Qwen3-VL-30B-A3B).

Config ``eval.judge``: ``{kind: openai, model, base_url}`` for any OpenAI-compatible chat-completions
endpoint, e.g. a local ``vllm serve`` (the key, if one is needed, comes from the environment variable
``OPENAI_API_KEY``; it is never written to a result); ``{kind: vllm, model}`` for an in-process vLLM
engine (GPU); ``{kind: hf, model}`` for an in-process transformers model. ``benchmarks`` lists the
benchmarks the judge scores (default: every benchmark whose scorer can use one); the others stay
rule-based. Every result JSON records ``judge.describe()`` (null when rule-based), so a judged number
is never mistaken for a rule-based one. The prompts the scorers send are in kawhi.eval.judge_prompts
(the official ones) or below (generic, for benchmarks without an official judge prompt).
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Iterable, TypeVar

EXTRACT_PROMPT = (
    "Extract the final answer from the response to the question. Reply with the answer only, "
    "no explanation.\n\nQuestion: {question}\n\nResponse: {response}\n\nExtracted answer:"
)
GRADE_PROMPT = (
    "Judge whether the response answers the question with the same final answer as the reference. "
    "Reply with 1 if it does and 0 if it does not.\n\nQuestion: {question}\n\nReference answer: "
    "{reference}\n\nResponse: {response}\n\nJudgement (1 or 0):"
)


JUDGE_KINDS = ("openai", "vllm", "hf")


class Judge:
    """A text-in, text-out model: ``complete`` answers a prompt (the official prompts are built by the
    scorers); ``extract_answer``/``grade``/``judge_sample`` ask the generic questions."""

    def __init__(self, complete: Callable[[str], str], description: dict[str, Any], concurrency: int = 1) -> None:
        self._complete = complete
        self._description = description
        self.concurrency = concurrency  # prompts in flight at once (an in-process model takes one at a time)

    def describe(self) -> dict[str, Any]:
        return dict(self._description)

    def complete(self, prompt: str) -> str:
        return self._complete(prompt)

    def extract_answer(self, question: str, response: str) -> str:
        return self._complete(EXTRACT_PROMPT.format(question=question, response=response)).strip()

    def judge_sample(self, question: str, reference: str, response: str) -> dict[str, Any]:
        """``{"extracted", "score"}`` of ``response`` by the generic extraction and grading prompts."""
        return {"extracted": self.extract_answer(question, response),
                "score": float(self.grade(question, reference, response))}

    def grade(self, question: str, reference: str, response: str) -> bool:
        verdict = self._complete(GRADE_PROMPT.format(question=question, reference=reference, response=response))
        match = re.search(r"[01]", verdict)
        if match is None:
            raise ValueError(f"judge {self._description.get('model')!r} gave no 0/1 verdict: {verdict[:200]!r}")
        return match.group(0) == "1"


def openai_completion(model: str, base_url: str, timeout_s: float = 120.0, max_retries: int = 3,
                      api_key: str | None = None) -> Callable[[str], str]:
    """``prompt -> reply`` from an OpenAI-compatible chat-completions server (temperature 0), through the
    ``openai`` client: each request times out after ``timeout_s`` and is retried ``max_retries`` times with
    exponential back-off on connection errors, timeouts, 429 and 5xx. The client is thread-safe, so one
    instance serves every worker of :func:`judge_map`."""
    from openai import OpenAI

    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
    # a local `vllm serve` needs no key, but the client insists on one
    client = OpenAI(base_url=base_url, api_key=key or "EMPTY", timeout=timeout_s, max_retries=max_retries)

    def complete(prompt: str) -> str:
        reply = client.chat.completions.create(model=model, temperature=0, max_tokens=256,
                                               messages=[{"role": "user", "content": prompt}])
        if not reply.choices or reply.choices[0].message is None:
            raise ValueError(f"judge endpoint {base_url} returned no choices[0].message: {str(reply)[:200]}")
        return reply.choices[0].message.content or ""

    return complete


def hf_completion(model: str, max_new_tokens: int = 256) -> Callable[[str], str]:
    """``prompt -> reply`` with an in-process transformers model (greedy, chat template when it has one).

    A vision-language checkpoint (Qwen3-VL-30B-A3B) loads as image-text-to-text and is asked text only.
    """
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoProcessor, AutoTokenizer

    config = AutoConfig.from_pretrained(model)
    vision = hasattr(config, "vision_config")
    tokenizer = AutoProcessor.from_pretrained(model) if vision else AutoTokenizer.from_pretrained(model)
    loader = transformers.AutoModelForImageTextToText if vision else AutoModelForCausalLM
    lm = loader.from_pretrained(model, dtype="auto", device_map="auto")
    lm.eval()

    def complete(prompt: str) -> str:
        import torch

        messages = [{"role": "user", "content": [{"type": "text", "text": prompt}] if vision else prompt}]
        if getattr(tokenizer, "chat_template", None):
            inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                   return_dict=True, return_tensors="pt")
        else:
            inputs = tokenizer(prompt, return_tensors="pt")
        inputs = inputs.to(lm.device)
        with torch.no_grad():
            out = lm.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    return complete


def vllm_completion(model: str, max_tokens: int = 256, **engine_args: Any) -> Callable[[str], str]:
    """``prompt -> reply`` with an in-process vLLM engine (GPU), greedy, through the chat template."""
    from vllm import LLM, SamplingParams

    engine = LLM(model=model, **engine_args)
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)

    def complete(prompt: str) -> str:
        outputs = engine.chat([{"role": "user", "content": prompt}], params, use_tqdm=False)
        return outputs[0].outputs[0].text

    return complete


def judges(config: dict[str, Any] | None, benchmark: str) -> bool:
    """Whether the ``eval.judge`` block scores ``benchmark`` (its ``benchmarks`` list, default all)."""
    if not config:
        return False
    listed = config.get("benchmarks")
    return listed is None or benchmark in listed


def build_judge(config: dict[str, Any] | None, benchmark: str | None = None) -> Judge | None:
    """The judge described by the ``eval.judge`` config block, or None when there is none (or when
    ``benchmark`` is given and the block's ``benchmarks`` list leaves it out)."""
    if not config or (benchmark is not None and not judges(config, benchmark)):
        return None
    kind, model = config.get("kind"), config.get("model")
    if not model:
        raise ValueError("eval.judge.model is required when eval.judge is set")
    if kind == "openai":
        base_url = config.get("base_url")
        if not base_url:
            raise ValueError("eval.judge.base_url is required for kind: openai")
        # the schema fills these; a block passed by hand (kawhi score --judge) may leave them out
        client = {k: config[k] for k in ("timeout_s", "max_retries") if k in config}
        return Judge(openai_completion(model, base_url, **client),
                     {"kind": "openai", "model": model, "base_url": base_url},
                     concurrency=int(config.get("concurrency", 1)))
    if kind == "vllm":
        engine_args = {k: config[k] for k in ("gpu_memory_utilization", "tensor_parallel_size") if k in config}
        return Judge(vllm_completion(model, **engine_args), {"kind": "vllm", "model": model})
    if kind == "hf":
        return Judge(hf_completion(model), {"kind": "hf", "model": model})
    raise ValueError(f"eval.judge.kind must be one of {JUDGE_KINDS}, got {kind!r}")


Item = TypeVar("Item")
Result = TypeVar("Result")


def judge_map(fn: Callable[[Item], Result], items: Iterable[Item], judge: Judge | None,
              desc: str = "judging") -> list[Result]:
    """``[fn(item) for item in items]``, in order; with a judge, ``judge.concurrency`` at a time in threads
    (tqdm's ``thread_map``) under a progress bar, since each item waits on the judge's replies."""
    items = list(items)
    if judge is None:
        return [fn(item) for item in items]
    from tqdm.contrib.concurrent import thread_map

    return thread_map(fn, items, max_workers=max(1, judge.concurrency), desc=desc, unit="sample",
                      disable=not items)
