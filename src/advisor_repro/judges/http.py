"""One POST with the retry policy both HTTP judges share, and the API key read at call time.

Retried: 429, 5xx, timeouts, dropped connections and a 200 whose body is not JSON, with
exponential backoff (a Retry-After header, when sent, is honoured up to a minute). Not
retried: other 4xx (a wrong key or model name does not heal by waiting). The key is read
from the environment for each call and never returned, logged or written; every error
message that leaves this module has it scrubbed out, in case a server echoes it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx

from advisor_repro.errors import JudgeError

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


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return min(float(value), MAX_WAIT_S) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def post_json(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    *,
    secret: str,
    max_retries: int,
    backoff_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """POST `body` as JSON and return the decoded reply, or raise JudgeError."""
    problem = ""
    for attempt in range(max_retries + 1):
        wait = min(backoff_s * 2**attempt, MAX_WAIT_S)
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
            sleep(wait)
    raise JudgeError(
        _scrub(f"{url}: {problem} on each of {max_retries + 1} tries", secret),
        "rerun later: verdicts already received are cached and are not asked again "
        "(or raise judge.max_retries / judge.timeout_s)",
    )
