"""The judge's client: the openai library's retries and timeouts, and samples judged concurrently."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kawhi.eval.rescore import score_samples
from kawhi.judge import Judge, build_judge, judge_map, openai_completion


class _FlakyChat(BaseHTTPRequestHandler):
    """Answers 503 to the first ``failures`` requests, then "42"; sleeps ``delay_s`` before answering."""
    failures = 0
    delay_s = 0.0
    calls = 0

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls += 1
        time.sleep(type(self).delay_s)
        if type(self).calls <= type(self).failures:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": "42"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except BrokenPipeError:
            pass  # the client timed out and left

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _FlakyChat.failures, _FlakyChat.delay_s, _FlakyChat.calls = 0, 0.0, 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyChat)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_a_failing_server_is_retried(server):
    _FlakyChat.failures = 2
    complete = openai_completion("m", server, timeout_s=10, max_retries=2)
    assert complete("q") == "42" and _FlakyChat.calls == 3


def test_retries_give_up_with_the_servers_error(server):
    import openai

    _FlakyChat.failures = 10
    complete = openai_completion("m", server, timeout_s=10, max_retries=1)
    with pytest.raises(openai.InternalServerError):
        complete("q")
    assert _FlakyChat.calls == 2


def test_a_slow_server_times_out(server):
    import openai

    _FlakyChat.delay_s = 2.0
    complete = openai_completion("m", server, timeout_s=0.3, max_retries=0)
    with pytest.raises(openai.APITimeoutError):
        complete("q")


def test_the_schema_fills_the_client_settings(repo_root):
    from kawhi.config import load_config

    config = load_config(repo_root / "config" / "paper.yaml")
    judge = config["eval"]["judge"]
    assert judge["concurrency"] >= 1 and judge["timeout_s"] > 0 and judge["max_retries"] >= 0
    assert build_judge(judge, "mathvista").concurrency == judge["concurrency"]


def test_samples_are_judged_concurrently():
    """Four samples that each wait for the other three: only finishes when four run at once."""
    barrier = threading.Barrier(4, timeout=10)

    def complete(prompt: str) -> str:
        barrier.wait()
        return "1"

    judge = Judge(complete, {"kind": "stub", "model": "m"}, concurrency=4)
    assert judge_map(lambda x: (x, judge.complete("p")), range(4), judge) == [(i, "1") for i in range(4)]


def test_score_samples_keeps_order_under_concurrency():
    class Scorer:
        name = "stub"

        def __init__(self, judge):
            self.judge = judge

        def score_sample(self, row, response):
            time.sleep(0.01 * (5 - row["id"]))  # later rows finish first
            return {"extracted": self.judge.complete(response), "score": float(row["id"] % 2)}

        def aggregate(self, rows, scored):
            return {"accuracy": 100.0 * sum(s["score"] for s in scored) / len(scored)}

    judge = Judge(lambda prompt: prompt.upper(), {"kind": "stub", "model": "m"}, concurrency=5)
    rows = [{"id": i} for i in range(5)]
    scored, metrics = score_samples(Scorer(judge), rows, [f"r{i}" for i in range(5)])
    assert [s["extracted"] for s in scored] == [f"R{i}" for i in range(5)] and metrics == {"accuracy": 40.0}
