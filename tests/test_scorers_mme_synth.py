"""MME, the synthetic suites, and the judge (fake local endpoint and stub callables, no network)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import datasets
import pytest

from kawhi.judge import Judge, build_judge
from kawhi.eval.scorers import get_scorer


def mme_rows():
    rows = []
    for qid, answers in (("a.png", ("Yes", "No")), ("b.png", ("Yes", "No"))):
        for answer in answers:
            rows.append({"id": f"{qid}#{answer}", "question_id": qid, "category": "existence", "answer": answer})
    return rows


def test_mme_image_with_half_right_pair_counts_for_acc_not_acc_plus():
    scorer = get_scorer("mme")
    rows = mme_rows()
    responses = ["Yes", "No.", "Yes, there is.", "yes"]  # image b: the second question is wrong
    scored = [scorer.score_sample(r, t) for r, t in zip(rows, responses)]
    assert [s["score"] for s in scored] == [1.0, 1.0, 1.0, 0.0]
    m = scorer.aggregate(rows, scored)
    assert m["acc"] == 75.0 and m["acc_plus"] == 50.0
    assert m["total"] == m["perception"] == m["score_existence"] == 125.0  # acc + acc+
    assert scorer.yes_no and scorer.primary == "total"


def test_mme_synthetic_suite_is_scored_as_mme(suite_factory):
    path = suite_factory("mme_synth", "test", n=4)
    rows = [dict(r) for r in datasets.load_dataset("parquet", data_files=str(path), split="train")]
    scorer = get_scorer("mme_synth")
    scored = [scorer.score_sample(r, r["answer"]) for r in rows]
    m = scorer.aggregate(rows, scored)
    assert m["acc"] == 100.0 and m["acc_plus"] == 100.0


@pytest.mark.parametrize("suite", ["shapes_count", "bars_lookup"])
def test_synthetic_suites_exact_answer(suite, suite_factory):
    path = suite_factory(suite, "test", n=6)
    rows = [dict(r) for r in datasets.load_dataset("parquet", data_files=str(path), split="train")]
    scorer = get_scorer(suite)
    right = [scorer.score_sample(r, f"The answer is \\boxed{{{r['answer']}}}.") for r in rows]
    wrong = [scorer.score_sample(r, "The answer is \\boxed{-12345}.") for r in rows]
    assert all(s["score"] == 1.0 for s in right) and all(s["score"] == 0.0 for s in wrong)
    assert scorer.aggregate(rows, right) == {"accuracy": 100.0}


def test_judge_grades_charxiv_and_is_recorded():
    calls = []

    def fake(prompt: str) -> str:
        calls.append(prompt)
        return "1" if "Reference answer: Model A" in prompt else "0"

    judge = Judge(fake, {"kind": "stub", "model": "fake"})
    scorer = get_scorer("charxiv_reasoning", judge=judge)
    row = {"id": "a", "reasoning_a": "Model A", "reasoning_q_source": 1, "question": "Which?"}
    assert scorer.score_sample(row, "It is the first model.")["score"] == 1.0  # the rule would say 0
    assert scorer.describe()["judge"] == {"kind": "stub", "model": "fake"} and len(calls) == 1
    assert get_scorer("charxiv_reasoning").describe()["judge"] is None


class _ChatHandler(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, body))
        reply = {"choices": [{"message": {"content": "42"}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_openai_compatible_judge_against_a_local_fake_server():
    server = HTTPServer(("127.0.0.1", 0), _ChatHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = {"kind": "openai", "model": "judge-model", "base_url": f"http://127.0.0.1:{server.server_port}/v1"}
        scorer = get_scorer("mathvista", judge=config)  # the eval.judge config block is accepted as is
        row = {"id": "1", "answer": "42", "question_type": "free_form", "answer_type": "integer",
               "choices": None, "precision": None, "question": "How many?"}
        result = scorer.score_sample(row, "a long rambling response without a clear final number")
        assert (result["extracted"], result["score"]) == ("42", 1.0)
        path, body = _ChatHandler.seen[-1]
        assert path == "/v1/chat/completions" and body["model"] == "judge-model" and body["temperature"] == 0
        prompt = body["messages"][0]["content"]  # MathVista's official extraction prompt, then the query
        assert prompt.startswith("Please read the following example.") and prompt.endswith("Extracted answer: ")
        assert scorer.describe()["judge"]["kind"] == "openai"
    finally:
        server.shutdown()
        server.server_close()


def test_judge_scores_only_the_benchmarks_it_lists():
    config = {"kind": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "benchmarks": ["mathvista"]}
    assert build_judge(config, "wemath") is None and build_judge(config, "mathvista") is not None
    assert get_scorer("wemath", judge=config).judge is None


def test_judge_config_errors_name_the_key():
    assert build_judge(None) is None
    with pytest.raises(ValueError, match="eval.judge.base_url"):
        build_judge({"kind": "openai", "model": "m"})
    with pytest.raises(ValueError, match="eval.judge.kind"):
        build_judge({"kind": "magic", "model": "m"})
