"""The `anthropic` judge: Anthropic's Messages API over plain HTTP (the paper's judge family).

POST {base_url}/v1/messages with the key in `x-api-key`, read from the variable
`judge.api_key_env` names at each call. The system prompt goes in the top-level `system`
field; the reply is the concatenated text blocks of `content`. With `judge.structured` the
request offers one tool whose `input_schema` is the reply's schema and forces it
(`tool_choice` {"type": "tool"}); the reply is that tool call's `input`, as JSON text for the
same strict parser. Without it, the paper's free text, parsed (the author's harness).
"""

from __future__ import annotations

import json

import httpx

from advisor_repro.config import Judge
from advisor_repro.judges.cache import JudgeIdentity, settings, structured
from advisor_repro.judges.http import ChatBody, Endpoint, RateGate, api_key, post_json
from advisor_repro.judges.rubric import Messages

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"  # the anthropic-version header of the Messages API
TOOL = "record_reply"  # the one tool of a structured request


class AnthropicJudge:
    def __init__(self, jc: Judge) -> None:
        self.jc = jc
        self.base_url = (jc.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.identity: JudgeIdentity = {
            "backend": "anthropic",
            "model": jc.model,
            "base_url": self.base_url,
            "api_version": API_VERSION,
            **settings(jc),
            **structured(jc),
        }
        self.concurrency = jc.concurrency  # requests in flight at once (judges/pool.py)
        self.client = httpx.Client(timeout=jc.timeout_s, limits=httpx.Limits(
            max_connections=jc.concurrency, max_keepalive_connections=jc.concurrency))
        # a 429 pauses every connection of this judge
        self.endpoint = Endpoint(self.client, jc.max_retries, jc.backoff_s, gate=RateGate())

    def body(self, messages: Messages, task: str) -> ChatBody:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        body: ChatBody = {
            "model": self.jc.model,
            "max_tokens": self.jc.max_tokens,
            "temperature": self.jc.temperature,
            "messages": [m for m in messages if m["role"] != "system"],
        }
        if system:
            body["system"] = system
        if self.jc.structured and task:
            from advisor_repro.judges.schemas import api_schema

            body["tools"] = [{"name": TOOL, "description": f"Record the {task} reply asked for.",
                              "input_schema": api_schema(task)}]
            body["tool_choice"] = {"type": "tool", "name": TOOL}
        return body

    def complete(self, messages: Messages, key: str, task: str = "") -> str:
        secret = api_key(self.jc.api_key_env, "anthropic", required=True)
        data = post_json(
            self.endpoint,
            f"{self.base_url}/v1/messages",
            {"x-api-key": secret, "anthropic-version": API_VERSION},
            self.body(messages, task),
            secret=secret,
        )
        blocks = data.get("content")
        if not isinstance(blocks, list):
            return ""  # no text: the parser turns this into a retry, then "unparseable"
        for b in blocks:
            if isinstance(b, dict) and b.get("type") == "tool_use" and b.get("name") == TOOL:
                return json.dumps(b.get("input"))
        return "".join(
            b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"
        )

    def close(self) -> None:
        self.client.close()
