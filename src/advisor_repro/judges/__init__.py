"""LLM judges behind one interface, a crash-safe reply cache, and the ask-parse-retry loop.

A judge backend has an `identity` (backend, model, base URL, revision and every setting that
changes a reply; never a key) and `complete(messages, key) -> str`. `key` names the question
in the run ("pair:<sample_id>:<pass>", "answer:train:<index>:<turn>", ...): the replay
backend answers by it, the others ignore it.

Backends: anthropic.py (Messages API), openai.py (any OpenAI-compatible server), local.py
(transformers, NF4 on the GPU), replay.py (verdicts read from a file). `make_judge` picks one
from the Config and wraps it in `CachedJudge`, whose cache folder lives in the stage's own
folder: a rerun or a resumed crash reads a reply already paid for instead of asking again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from advisor_repro.config import Config, Judge
from advisor_repro.files import canonical_json, read_json, sha256_text, write_json
from advisor_repro.judges.rubric import PROMPT_VERSION, Messages, ReplyError, retry_messages


class Backend(Protocol):
    identity: dict[str, Any]

    def complete(self, messages: Messages, key: str) -> str: ...

    def close(self) -> None: ...


class MissingReply(LookupError):
    """The replay file holds no reply for this question."""


def cache_key(identity: dict[str, Any], messages: Messages) -> str:
    """Backend, model, base URL, revision, parameters and the hash of the full prompt."""
    prompt_sha = sha256_text(canonical_json(messages))
    return sha256_text(canonical_json({"judge": identity, "prompt_sha256": prompt_sha}))


class CachedJudge:
    """Replies stored one file per cache key, written atomically: a crash loses at most the
    call in flight. The replay backend is not cached (it costs nothing)."""

    def __init__(self, backend: Backend, cache_dir: Path | None) -> None:
        self.backend = backend
        self.cache_dir = cache_dir if backend.identity["backend"] != "replay" else None
        self.calls = 0  # replies paid for in this process
        self.hits = 0  # replies read from the cache

    @property
    def identity(self) -> dict[str, Any]:
        return self.backend.identity

    def complete(self, messages: Messages, key: str) -> tuple[str, str]:
        """-> (reply text, cache key)"""
        ck = cache_key(self.identity, messages)
        path = self.cache_dir / f"{ck}.json" if self.cache_dir else None
        if path is not None and path.is_file():
            try:
                entry = read_json(path)
                if entry.get("key") == ck:
                    self.hits += 1
                    return entry["text"], ck
            except (OSError, ValueError, KeyError):
                pass  # unreadable entry: ask again and overwrite it
        text = self.backend.complete(messages, key)
        self.calls += 1
        if path is not None:
            write_json(path, {"key": ck, "question": key, "judge": self.identity,
                              "text": text, "time": time.time()})
        return text, ck

    def close(self) -> None:
        self.backend.close()


@dataclass
class Reply:
    """One answered question: the parsed reply, or why there is none."""

    status: str  # "ok" | "unparseable" | "missing" (replay file has no reply)
    parsed: dict[str, Any] | None
    raw: str  # the last reply text
    attempts: int
    cache_key: str
    errors: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """Bookkeeping fields every stage writes next to the parsed values."""
        out: dict[str, Any] = {
            "status": self.status,
            "attempts": self.attempts,
            "cache_key": self.cache_key,
        }
        if self.status != "ok":
            out["errors"] = self.errors
            out["raw"] = self.raw[:2000]
        return out


def ask(
    judge: CachedJudge,
    messages: Messages,
    parse: Callable[[str], dict[str, Any]],
    key: str,
    parse_retries: int,
) -> Reply:
    """Ask, parse strictly, and on a malformed reply ask again with the reply and the problem
    shown, at most `parse_retries` times. Never raises for a bad reply: it becomes an
    "unparseable" Reply that the statistics count separately."""
    errors: list[str] = []
    text, ck = "", ""
    for attempt in range(parse_retries + 1):
        try:
            text, ck = judge.complete(messages, key)
        except MissingReply as exc:
            return Reply("missing", None, "", attempt, ck, [str(exc)])
        try:
            return Reply("ok", parse(text), text, attempt + 1, ck, errors)
        except ReplyError as exc:
            errors.append(str(exc))
            messages = retry_messages(messages, text, str(exc))
    return Reply("unparseable", None, text, parse_retries + 1, ck, errors)


def make_judge(cfg: Config, cache_dir: Path | None) -> CachedJudge:
    """The Config's backend, wrapped in the cache. Heavy imports stay inside the backends."""
    backend_name = cfg.judge.backend
    backend: Backend
    if backend_name == "anthropic":
        from advisor_repro.judges.anthropic import AnthropicJudge

        backend = AnthropicJudge(cfg.judge)
    elif backend_name == "openai":
        from advisor_repro.judges.openai import OpenAIJudge

        backend = OpenAIJudge(cfg.judge)
    elif backend_name == "local":
        from advisor_repro.judges.local import LocalJudge

        backend = LocalJudge.from_config(cfg)
    else:
        from advisor_repro.judges.replay import ReplayJudge

        backend = ReplayJudge.from_file(cfg.judge.replay_file)
    return CachedJudge(backend, cache_dir)


def settings(jc: Judge) -> dict[str, Any]:
    """The judge parameters that change a reply, shared by every backend's identity."""
    return {
        "temperature": jc.temperature,
        "max_tokens": jc.max_tokens,
        "prompt_version": PROMPT_VERSION,
    }
