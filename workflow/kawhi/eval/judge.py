"""Optional LLM judge for the benchmarks whose official scoring uses one (MathVista's answer
extraction, MathVerse's equivalence check, CharXiv's grading).

Config ``eval.judge``: ``{kind: openai, model, base_url}`` for any OpenAI-compatible chat-completions
endpoint (the key, if one is needed, comes from the environment variable ``OPENAI_API_KEY``; it is
never written to a result), or ``{kind: hf, model}`` for a local transformers model. Every result
JSON records ``judge.describe()``, so a judged number is never mistaken for a rule-based one.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from typing import Any, Callable

EXTRACT_PROMPT = (
    "Extract the final answer from the response to the question. Reply with the answer only, "
    "no explanation.\n\nQuestion: {question}\n\nResponse: {response}\n\nExtracted answer:"
)
GRADE_PROMPT = (
    "Judge whether the response answers the question with the same final answer as the reference. "
    "Reply with 1 if it does and 0 if it does not.\n\nQuestion: {question}\n\nReference answer: "
    "{reference}\n\nResponse: {response}\n\nJudgement (1 or 0):"
)


class Judge:
    """A text-in, text-out model with the two questions the scorers ask it."""

    def __init__(self, complete: Callable[[str], str], description: dict[str, Any]) -> None:
        self._complete = complete
        self._description = description

    def describe(self) -> dict[str, Any]:
        return dict(self._description)

    def extract_answer(self, question: str, response: str) -> str:
        return self._complete(EXTRACT_PROMPT.format(question=question, response=response)).strip()

    def grade(self, question: str, reference: str, response: str) -> bool:
        verdict = self._complete(GRADE_PROMPT.format(question=question, reference=reference, response=response))
        match = re.search(r"[01]", verdict)
        if match is None:
            raise ValueError(f"judge {self._description.get('model')!r} gave no 0/1 verdict: {verdict[:200]!r}")
        return match.group(0) == "1"


def openai_completion(model: str, base_url: str, timeout_s: float = 120.0,
                      api_key: str | None = None) -> Callable[[str], str]:
    """``prompt -> reply`` through ``POST {base_url}/chat/completions`` (temperature 0)."""
    url = base_url.rstrip("/") + "/chat/completions"
    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")

    def complete(prompt: str) -> str:
        body = json.dumps({"model": model, "temperature": 0, "max_tokens": 256,
                           "messages": [{"role": "user", "content": prompt}]}).encode()
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            payload = json.loads(reply.read())
        try:
            return payload["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as err:
            raise ValueError(f"judge endpoint {url} returned no choices[0].message.content: {str(payload)[:200]}") from err

    return complete


def hf_completion(model: str, max_new_tokens: int = 64) -> Callable[[str], str]:
    """``prompt -> reply`` with a local transformers causal LM (greedy, chat template when it has one)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    lm = AutoModelForCausalLM.from_pretrained(model)
    lm.eval()

    def complete(prompt: str) -> str:
        import torch

        if tokenizer.chat_template:
            text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                 add_generation_prompt=True)
        else:
            text = prompt
        inputs = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            out = lm.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    return complete


def build_judge(config: dict[str, Any] | None) -> Judge | None:
    """The judge described by the ``eval.judge`` config block, or None when there is none."""
    if not config:
        return None
    kind, model = config.get("kind"), config.get("model")
    if not model:
        raise ValueError("eval.judge.model is required when eval.judge is set")
    if kind == "openai":
        base_url = config.get("base_url")
        if not base_url:
            raise ValueError("eval.judge.base_url is required for kind: openai")
        return Judge(openai_completion(model, base_url), {"kind": "openai", "model": model, "base_url": base_url})
    if kind == "hf":
        return Judge(hf_completion(model), {"kind": "hf", "model": model})
    raise ValueError(f"eval.judge.kind must be 'openai' or 'hf', got {kind!r}")
