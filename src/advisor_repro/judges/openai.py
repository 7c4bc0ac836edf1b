"""The `openai` judge: any OpenAI-compatible chat server (vLLM, llama.cpp server, Ollama).

POST {base_url}/chat/completions. A key is sent as a Bearer token only when
`judge.api_key_env` names a variable (local servers usually need none); it is read at each
call and never stored. With `judge.structured` the request carries the reply's schema as
`response_format` {"type": "json_schema", "json_schema": {"name", "strict": true, "schema"}}
(OpenAI's structured outputs; vLLM and llama.cpp server accept the same field); without it,
the paper's free text, parsed.
"""

from __future__ import annotations

import httpx

from advisor_repro.config import Judge
from advisor_repro.judges.cache import JudgeIdentity, settings, structured
from advisor_repro.judges.http import ChatBody, Endpoint, RateGate, api_key, post_json
from advisor_repro.judges.rubric import Messages


class OpenAIJudge:
    def __init__(self, jc: Judge) -> None:
        self.jc = jc
        self.base_url = jc.base_url.rstrip("/")
        self.identity: JudgeIdentity = {
            "backend": "openai",
            "model": jc.model,
            "base_url": self.base_url,
            **settings(jc),
            **structured(jc),
        }
        self.concurrency = jc.concurrency  # requests in flight at once (judges/pool.py)
        self.client = httpx.Client(timeout=jc.timeout_s, limits=httpx.Limits(
            max_connections=jc.concurrency, max_keepalive_connections=jc.concurrency))
        # a 429 pauses every connection of this judge
        self.endpoint = Endpoint(self.client, jc.max_retries, jc.backoff_s, gate=RateGate())

    def body(self, messages: Messages, task: str) -> ChatBody:
        body: ChatBody = {
            "model": self.jc.model,
            "messages": messages,
            "temperature": self.jc.temperature,
            "max_tokens": self.jc.max_tokens,
        }
        if self.jc.structured and task:
            from advisor_repro.judges.schemas import api_schema

            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": f"{task}_reply", "strict": True, "schema": api_schema(task)}}
        return body

    def complete(self, messages: Messages, key: str, task: str = "") -> str:
        secret = api_key(self.jc.api_key_env, "openai", required=bool(self.jc.api_key_env))
        headers = {"authorization": f"Bearer {secret}"} if secret else {}
        data = post_json(
            self.endpoint,
            f"{self.base_url}/chat/completions",
            headers,
            self.body(messages, task),
            secret=secret,
        )
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return ""  # no text: the parser turns this into a retry, then "unparseable"
        return content if isinstance(content, str) else ""

    def close(self) -> None:
        self.client.close()
