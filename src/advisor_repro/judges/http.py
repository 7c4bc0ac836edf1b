"""One POST with the retry policy both HTTP judges share, and the API key read at call time.

Retried: 429, 5xx, timeouts, dropped connections and a 200 whose body is not JSON, with
exponential backoff (a Retry-After header, seconds or an HTTP date, is honoured up to a
minute). Not retried: other 4xx (a wrong key or model name does not heal by waiting). A 429
also holds every other connection of the same judge (`RateGate`): the limit is the account's,
so the requests in flight beside it would only meet the same reply. The key is read
from the environment for each call and never returned, logged or written; every error
message that leaves this module has it scrubbed out, in case a server echoes it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NotRequired, TypedDict

import httpx

from advisor_repro.errors import JudgeError
from advisor_repro.judges.rubric import Messages
from advisor_repro.judges.schemas import JsonSchema

MAX_WAIT_S = 60.0  # longest single wait between retries


def api_key(env_name: str, backend: str, required: bool) -> str:
    """The key from the variable the config names, read now; "" when none is named."""
    if not env_name:
        if required:
            raise JudgeError(
                f"the {backend} judge needs an API key but judge.api_key_env is empty",
                "--set judge.api_key_env=ANTHROPIC_API_KEY (the variable's NAME)",
            )
        return ""
    key = os.environ.get(env_name, "")
    if not key and required:
        raise JudgeError(
            f"the {backend} judge needs an API key in the environment variable {env_name}, "
            "which is not set",
            f"one of: export {env_name}=... (docker run -e {env_name}; read at call time, never "
            "written anywhere); or --set judge.backend=local, an open judge on this GPU (the "
            "paper profile's Qwen/Qwen2.5-14B-Instruct in NF4, about 10 GB: it fits a 16 GB card "
            "with nothing else on it, and `repro fetch` brings it); or `repro import-release "
            "DIR` of the author's released verdicts, then rerun `repro all` (imported stages are "
            "kept)",
        )
    return key


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "[key]") if secret else text


class RateGate:
    """One per judge, shared by its connections: `hold(s)` after a 429 makes every request
    about to be sent wait until s seconds from now."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._lock = threading.Lock()
        self._until = 0.0  # time.monotonic() before which no request is sent
        self._sleep = sleep

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self) -> None:
        while True:
            with self._lock:
                left = self._until - time.monotonic()
            if left <= 0:
                return
            self._sleep(left)


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:  # the other form RFC 9110 allows: an HTTP date
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None  # unreadable: fall back to our own backoff
    return min(max(seconds, 0.0), MAX_WAIT_S)


class Tool(TypedDict):
    name: str
    description: str
    input_schema: JsonSchema


class NamedSchema(TypedDict):
    name: str
    strict: bool
    schema: JsonSchema


class ResponseFormat(TypedDict):
    type: str  # "json_schema"
    json_schema: NamedSchema


class ChatBody(TypedDict):
    """The request both HTTP judges send: Anthropic's Messages API (the system prompt apart,
    a forced tool when structured) or an OpenAI-compatible chat completion (a
    response_format when structured)."""

    model: str
    messages: Messages
    max_tokens: int
    temperature: float
    system: NotRequired[str]
    tools: NotRequired[list[Tool]]
    tool_choice: NotRequired[dict[str, str]]
    response_format: NotRequired[ResponseFormat]


@dataclass
class Endpoint:
    """One judge's HTTP side, shared by its connections: the client, the retry policy, and
    the gate a 429 closes for all of them."""

    client: httpx.Client
    max_retries: int
    backoff_s: float
    gate: RateGate | None = None
    sleep: Callable[[float], None] = time.sleep


def post_json(
    ep: Endpoint, url: str, headers: dict[str, str], body: ChatBody, *, secret: str
) -> dict[str, Any]:
    """POST `body` as JSON and return the decoded reply (the API's free-form JSON object, read
    by the backend that asked), or raise JudgeError."""
    client, max_retries, gate = ep.client, ep.max_retries, ep.gate
    problem = ""
    for attempt in range(max_retries + 1):
        wait = min(ep.backoff_s * 2**attempt, MAX_WAIT_S)
        if gate is not None:
            gate.wait()
        try:
            resp = client.post(url, headers=headers, json=body)
        except httpx.TimeoutException:
            problem = "the request timed out"
        except httpx.TransportError as exc:
            problem = f"the connection failed ({type(exc).__name__})"
        else:
            code = resp.status_code
            if code == 429 or code >= 500:
                problem = f"HTTP {code}"
                wait = _retry_after(resp) or wait
                if code == 429 and gate is not None:
                    gate.hold(wait)
            elif code >= 400:
                raise JudgeError(
                    _scrub(f"{url} refused the judge request: HTTP {code} "
                           f"{resp.text[:300]!r}", secret),
                    "check judge.model, judge.base_url and the key in the variable "
                    "judge.api_key_env names",
                )
            else:
                try:
                    data = resp.json()
                except ValueError:
                    problem = "HTTP 200 with a body that is not JSON"
                else:
                    if isinstance(data, dict):
                        return data
                    problem = "HTTP 200 with a JSON body that is not an object"
        if attempt < max_retries:
            ep.sleep(wait)
    raise JudgeError(
        _scrub(f"{url}: {problem} on each of {max_retries + 1} tries", secret),
        "rerun later: verdicts already received are cached and are not asked again "
        "(or raise judge.max_retries / judge.timeout_s)",
    )
