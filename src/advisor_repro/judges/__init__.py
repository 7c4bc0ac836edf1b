"""LLM judges behind one interface, a crash-safe reply cache, and the ask-parse-retry loop.

A judge backend has an `identity` (backend, model, base URL, revision and every setting that
changes a reply; never a key) and `complete(messages, key, task) -> str`. `key` names the
question in the run ("pair:<sample_id>:<pass>", "answer:train:<index>:<turn>", ...): the
replay backend answers by it, the others ignore it. `task` ("pair", "claim", "answer") names
the reply's schema (schemas.py): the local judge decodes under it, the API judges ask for it
when `judge.structured` is on. A backend that can batch (local) also has
`complete_batch(items, done)`; `ask_all` sends it every question not yet in the cache at once.
The API backends have `concurrency` (judge.concurrency): `ask_all` keeps that many of their
requests in flight (pool.py), a 429 holding all of them (http.RateGate).

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
from advisor_repro.errors import ReproError
from advisor_repro.files import canonical_json, read_json, sha256_text, write_json
from advisor_repro.judges.rubric import (
    PROMPT_VERSION,
    Messages,
    ReplyError,
    parse_answer,
    parse_claim,
    parse_pair,
    retry_messages,
)

TASK_OF: dict[Callable[[str], dict[str, Any]], str] = {
    parse_pair: "pair", parse_claim: "claim", parse_answer: "answer"}


class Backend(Protocol):
    identity: dict[str, Any]

    def complete(self, messages: Messages, key: str, task: str = "") -> str: ...

    def close(self) -> None: ...


class MissingReply(LookupError):
    """The replay file holds no reply for this question."""


def cache_key(identity: dict[str, Any], messages: Messages) -> str:
    """Backend, model, base URL, revision, parameters and the hash of the full prompt."""
    prompt_sha = sha256_text(canonical_json(messages))
    return sha256_text(canonical_json({"judge": identity, "prompt_sha256": prompt_sha}))


def _progress(total: int, desc: str) -> Any:
    import sys

    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="reply", mininterval=0.5 if tty else 15.0)


class CachedJudge:
    """Replies stored one file per cache key, written atomically: a crash loses at most the
    call in flight. The replay backend is not cached (it costs nothing)."""

    def __init__(self, backend: Backend, cache_dir: Path | None) -> None:
        self.backend = backend
        self.cache_dir = cache_dir if backend.identity["backend"] != "replay" else None
        self.calls = 0  # replies paid for in this process
        self.hits = 0  # replies read from the cache
        self.seconds = 0.0  # wall-clock spent waiting for the backend's replies

    @property
    def identity(self) -> dict[str, Any]:
        return self.backend.identity

    def _path(self, ck: str) -> Path | None:
        return self.cache_dir / f"{ck}.json" if self.cache_dir else None

    def cached(self, ck: str) -> str | None:
        text = self._read(ck)
        if text is not None:
            self.hits += 1
        return text

    def _read(self, ck: str) -> str | None:
        path = self._path(ck)
        if path is not None and path.is_file():
            try:
                entry = read_json(path)
                if entry.get("key") == ck:
                    return str(entry["text"])
            except (OSError, ValueError, KeyError):
                pass  # unreadable entry: ask again and overwrite it
        return None

    def uncached(self, messages: list[Messages]) -> int:
        """How many of these questions have no reply in the cache (asking none of them)."""
        return sum(self._read(cache_key(self.identity, m)) is None for m in messages)

    def _store(self, ck: str, key: str, text: str) -> None:
        self.calls += 1
        path = self._path(ck)
        if path is not None:
            write_json(path, {"key": ck, "question": key, "judge": self.identity,
                              "text": text, "time": time.time()})

    def complete(self, messages: Messages, key: str, task: str = "") -> tuple[str, str]:
        """-> (reply text, cache key)"""
        ck = cache_key(self.identity, messages)
        text = self.cached(ck)
        if text is None:
            t0 = time.perf_counter()
            text = self.backend.complete(messages, key, task)
            self.seconds += time.perf_counter() - t0
            self._store(ck, key, text)
        return text, ck

    def complete_many(self, items: list[tuple[Messages, str, str]]) -> list[tuple[str, str]]:
        """complete() for each (messages, key, task), the uncached ones in one batched call
        when the backend can batch (each reply cached as soon as its batch ends), or over
        `backend.concurrency` connections (each reply cached as it arrives)."""
        keys = [cache_key(self.identity, m) for m, _, _ in items]
        texts: list[str | None] = [self.cached(ck) for ck in keys]
        todo = [i for i, t in enumerate(texts) if t is None]
        batch = getattr(self.backend, "complete_batch", None)
        if not todo:
            return [(t or "", ck) for t, ck in zip(texts, keys, strict=True)]
        bar = _progress(len(todo), f"judge {self.identity.get('model')}")
        t0 = time.perf_counter()

        def done(j: int, text: str) -> None:
            i = todo[j]
            texts[i] = text
            self._store(keys[i], items[i][1], text)
            bar.update(1)

        workers = getattr(self.backend, "concurrency", 1)
        try:
            if batch is not None:
                batch([items[i] for i in todo], done)
            elif workers > 1 and len(todo) > 1:  # HTTP: several connections (pool.py)
                from advisor_repro.judges.pool import ask_concurrently

                ask_concurrently(self.backend.complete, [items[i] for i in todo], done, workers)
            else:  # one request at a time: a failure keeps what came before
                for j, i in enumerate(todo):
                    done(j, self.backend.complete(*items[i]))
        finally:
            self.seconds += time.perf_counter() - t0
            bar.close()
        return [(t or "", ck) for t, ck in zip(texts, keys, strict=True)]

    def asking(self) -> dict[str, Any]:
        """How the replies paid for here were asked: seconds, and the local judge's batches or
        the API judge's connections."""
        out: dict[str, Any] = {"seconds": round(self.seconds, 2)}
        for name in ("batch_sizes", "grammar_seconds", "concurrency", "peak_reserved_gib"):
            value = getattr(self.backend, name, None)
            if value is not None:  # peak_reserved_gib: the local judge on a GPU only
                out[name] = round(value, 3) if isinstance(value, float) else value
        return out

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


@dataclass
class Question:
    """One independent question: its messages, the strict parser of its reply, its key."""

    messages: Messages
    parse: Callable[[str], dict[str, Any]]
    key: str


def ask_all(judge: CachedJudge, questions: list[Question], parse_retries: int) -> list[Reply]:
    """Ask every question (batched where the backend can), parse strictly, and ask a
    malformed reply's question again with the reply and the problem shown, at most
    `parse_retries` times. Never raises for a bad reply: it becomes an "unparseable" Reply
    that the statistics count separately."""
    replies: list[Reply | None] = [None] * len(questions)
    errors: list[list[str]] = [[] for _ in questions]
    messages = [q.messages for q in questions]
    todo = list(range(len(questions)))
    for attempt in range(parse_retries + 1):
        if not todo:
            break
        try:
            got = judge.complete_many([(messages[i], questions[i].key,
                                        TASK_OF.get(questions[i].parse, "")) for i in todo])
        except MissingReply:  # replay: which one is missing is found one at a time
            got = []
            for i in todo:
                try:
                    got.append(judge.complete(messages[i], questions[i].key))
                except MissingReply as exc:
                    replies[i] = Reply("missing", None, "", attempt, "", [str(exc)])
                    got.append(("", ""))
        again = []
        for i, (text, ck) in zip(todo, got, strict=True):
            if replies[i] is not None:
                continue
            try:
                replies[i] = Reply("ok", questions[i].parse(text), text, attempt + 1, ck,
                                   errors[i])
            except ReplyError as exc:
                errors[i].append(str(exc))
                if attempt < parse_retries:
                    messages[i] = retry_messages(messages[i], text, str(exc))
                    again.append(i)
                else:
                    replies[i] = Reply("unparseable", None, text, attempt + 1, ck, errors[i])
        todo = again
    assert all(r is not None for r in replies)
    return replies  # type: ignore[return-value]


def ask(
    judge: CachedJudge,
    messages: Messages,
    parse: Callable[[str], dict[str, Any]],
    key: str,
    parse_retries: int,
) -> Reply:
    """One question: ask_all of one."""
    return ask_all(judge, [Question(messages, parse, key)], parse_retries)[0]


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


def check_backend(jc: Judge) -> None:
    """The judge can be asked, found without asking it: the API judges' key is in the variable
    judge.api_key_env names (read and dropped: never kept, never shown), the replay file
    exists and reads. The local judge's model is found when it is loaded."""
    if jc.backend in ("anthropic", "openai"):
        from advisor_repro.judges.http import api_key

        api_key(jc.api_key_env, jc.backend,
                required=jc.backend == "anthropic" or bool(jc.api_key_env))
    elif jc.backend == "replay":
        from advisor_repro.judges.replay import ReplayJudge

        ReplayJudge.from_file(jc.replay_file)


def unavailable(cfg: Config) -> list[ReproError]:
    """Why the judge (of the judge and audit stages) could not be asked, found without asking
    it or writing anything: `check_backend`'s refusal, or the local judge's model not loadable
    (not created, or not in the cache while offline)."""
    from advisor_repro.models import hub

    try:
        check_backend(cfg.judge)
    except ReproError as exc:
        return [exc]
    if cfg.judge.backend != "local":
        return []
    if not cfg.judge.local_model:  # the generation base stands in as the judge
        return list(hub.base_unavailable(cfg.model, "eval"))
    return list(hub.models_unavailable(cfg.judge.local_model))


def waits(jc: Judge, calls: int) -> int:
    """How many calls' latency `calls` judge calls take end to end, for estimates: an API
    judge keeps judge.concurrency of them in flight (a rate limit can stretch this); the
    local and replay judges are counted call by call."""
    if jc.backend in ("anthropic", "openai"):
        return -(-calls // jc.concurrency)
    return calls


def settings(jc: Judge) -> dict[str, Any]:
    """The judge parameters that change a reply, shared by every backend's identity."""
    return {
        "temperature": jc.temperature,
        "max_tokens": jc.max_tokens,
        "prompt_version": PROMPT_VERSION,
    }


def structured(jc: Judge) -> dict[str, Any]:
    """The API judges' identity entry for structured output (absent on the paper's
    free-text path, so its cache keys stay as they were)."""
    from advisor_repro.judges.schemas import SCHEMA_VERSION

    return {"structured": SCHEMA_VERSION} if jc.structured else {}
