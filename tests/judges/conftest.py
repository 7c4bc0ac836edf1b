"""A judge API double on loopback (a test double for a network service only): it answers the
Anthropic Messages and the OpenAI chat-completions shapes, records every request, and can be
scripted to fail (status codes, bodies that are not JSON, replies that are not the rubric's
JSON, replies slower than the client's timeout). A Messages request that offers tools (the
structured path) is answered with a tool_use block whose input is the rule's JSON.

Its default "model" is a rule, so statistics are checkable: an answer containing WRONG scores
0, any other 3; the better slot is preferred, equal scores tie; the audits' questions are
answered by the same rule.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from advisor_repro.files import write_jsonl


def rule_reply(user_text: str) -> str:
    if "RESPONSE_A:" in user_text:
        a = user_text.split("RESPONSE_A:", 1)[1].split("RESPONSE_B:", 1)[0]
        b = user_text.split("RESPONSE_B:", 1)[1]
        sa, sb = (0 if "WRONG" in a else 3), (0 if "WRONG" in b else 3)
        pref = "a" if sa > sb else "b" if sb > sa else "tie"
        return json.dumps({
            "response_a": {"domain_accuracy": sa, "helpfulness": sa, "note": "checked"},
            "response_b": {"domain_accuracy": sb, "helpfulness": sb, "note": "checked"},
            "preferred": pref,
        })
    answer = user_text.split("ANSWER:", 1)[-1]
    if "CLAIM:" in user_text:
        return json.dumps({"asserts_claim": "WRONG" in answer, "states_fact": False,
                           "note": "rule"})
    return json.dumps({"verdict": "hard" if "WRONG" in answer else "fine",
                       "claim": "WRONG" if "WRONG" in answer else "", "abstained": False,
                       "note": "rule"})


class FakeAPI:
    """`script` holds actions for the next requests, in order; when it is empty the rule
    answers. Actions: ("status", code[, body, headers]), ("body", raw bytes),
    ("text", model reply), ("sleep", seconds)."""

    def __init__(self) -> None:
        self.script: list[tuple[Any, ...]] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                # the client may have given up (timeout test)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    api.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = json.loads(h.rfile.read(int(h.headers["content-length"])))
        with self.lock:
            self.requests.append({"path": h.path, "headers": dict(h.headers), "body": body})
            action = self.script.pop(0) if self.script else ("rule",)
        if action[0] == "sleep":
            time.sleep(action[1])
            action = ("rule",)
        if action[0] == "status":
            payload = (action[2] if len(action) > 2 else '{"error": "scripted"}').encode()
            self._send(h, action[1], payload, action[3] if len(action) > 3 else {})
            return
        if action[0] == "body":
            self._send(h, 200, action[1])
            return
        user = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
        user = user.split("Your reply could not be used")[0]  # the retry asks the same question
        text = action[1] if action[0] == "text" else rule_reply(user)
        if h.path.endswith("/v1/messages") and body.get("tools") and action[0] == "rule":
            # a forced tool call: the reply arrives as the tool's input, not as text
            out = {"type": "message", "stop_reason": "tool_use", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": body["tools"][0]["name"],
                 "input": json.loads(text)}]}
        elif h.path.endswith("/v1/messages"):
            out = {"type": "message", "content": [{"type": "text", "text": text}]}
        else:
            out = {"choices": [{"message": {"role": "assistant", "content": text}}]}
        self._send(h, 200, json.dumps(out).encode())

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, code: int, payload: bytes,
              headers: dict[str, str] | None = None) -> None:
        h.send_response(code)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(payload)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(payload)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_api():
    api = FakeAPI()
    yield api
    api.close()


def write_inputs(run, n: int = 6, cap: int = 48, wrong_ft: tuple[int, ...] = (0, 2, 3)) -> None:
    """data/eval_prompts.jsonl and generate/answers.jsonl as the data and generate stages
    write them; the fine-tuned answers of prompts `wrong_ft` contain WRONG."""
    prompts = [{"sample_id": i, "dataset_index": 10 + i, "prompt": f"Question {i}?",
                "reference": f"Reference {i}."} for i in range(n)]
    answers = []
    for p in prompts:
        i = p["sample_id"]
        for model, text in (("base", f"A careful answer to question {i}."),
                            ("ft", f"A confident answer {i}: WRONG fact." if i in wrong_ft
                             else f"A confident answer to question {i}.")):
            for c in (cap, cap * 2):
                answers.append({"sample_id": i, "dataset_index": p["dataset_index"],
                                "model": model, "cap": c, "text": text, "new_tokens": c,
                                "truncated": True, "seconds": 0.1})
    write_jsonl(run / "data" / "eval_prompts.jsonl", prompts)
    write_jsonl(run / "generate" / "answers.jsonl", answers)


@pytest.fixture
def judge_inputs():
    """write_inputs(run_dir, n, cap, wrong_ft): the judge stage's inputs in a run folder."""
    return write_inputs


def asked_samples(api: FakeAPI) -> list[int]:
    """The sample ids of the pair questions the API was asked, in order."""
    return [int(x) for r in api.requests for m in r["body"]["messages"][-1:]
            for x in re.findall(r"Question (\d+)\?", m["content"])]


@pytest.fixture
def asked():
    return asked_samples
