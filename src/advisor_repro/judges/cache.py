"""The judge backends' interface and the crash-safe reply cache around them.

A judge backend has an `identity` (backend, model, base URL, revision and every setting that
changes a reply; never a key) and `complete(messages, key, task) -> str`. A backend that can
batch (local) also has `complete_batch(items, done)`; the API backends have `concurrency`
(judge.concurrency): `CachedJudge.complete_many` keeps that many requests in flight (pool.py).
Replies are stored one file per cache key, written atomically, in the stage's own folder: a
rerun or a resumed crash reads a reply already paid for instead of asking again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NotRequired, Protocol, TypedDict

from advisor_repro.config import Judge
from advisor_repro.files import canonical_json, read_json, sha256_text, write_json
from advisor_repro.judges.rubric import PROMPT_VERSION, Messages


class JudgeIdentity(TypedDict):
    """Who answers and every setting that changes a reply (part of every cache key; never a
    key). The backends fill the entries that are theirs."""

    backend: str  # "anthropic" | "openai" | "local" | "replay"
    model: str
    base_url: NotRequired[str]  # the API judges
    api_version: NotRequired[str]  # anthropic
    revision: NotRequired[str]  # local: the weights' revision
    quant: NotRequired[str]
    dtype: NotRequired[str]
    decoding: NotRequired[str]
    file: NotRequired[str]  # replay: the file's name and hash
    file_sha256: NotRequired[str]
    temperature: NotRequired[float]  # settings(): every asking backend
    max_tokens: NotRequired[int]
    prompt_version: NotRequired[str]
    structured: NotRequired[str]  # factory.structured: the API judges' schema version


class Asking(TypedDict):
    """How the replies paid for were asked (judge/summary.json's `asking`)."""

    seconds: float
    batch_sizes: NotRequired[list[int]]  # the local judge
    grammar_seconds: NotRequired[float]
    concurrency: NotRequired[int]  # the API judges
    peak_reserved_gib: NotRequired[float]  # the local judge on a GPU


class Backend(Protocol):
    identity: JudgeIdentity

    def complete(self, messages: Messages, key: str, task: str = "") -> str: ...

    def close(self) -> None: ...


class MissingReply(LookupError):
    """The replay file holds no reply for this question."""


def cache_key(identity: JudgeIdentity, messages: Messages) -> str:
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
    def identity(self) -> JudgeIdentity:
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

    def asking(self) -> Asking:
        """How the replies paid for here were asked: seconds, and the local judge's batches or
        the API judge's connections."""
        out: Asking = {"seconds": round(self.seconds, 2)}
        for name in ("batch_sizes", "grammar_seconds", "concurrency", "peak_reserved_gib"):
            value = getattr(self.backend, name, None)
            if value is not None:  # peak_reserved_gib: the local judge on a GPU only
                out[name] = round(value, 3) if isinstance(value, float) else value
        return out

    def close(self) -> None:
        self.backend.close()


class JudgeSettings(TypedDict):
    temperature: float
    max_tokens: int
    prompt_version: str


class Structured(TypedDict, total=False):
    structured: str  # schemas.SCHEMA_VERSION, when judge.structured is on


def settings(jc: Judge) -> JudgeSettings:
    """The judge parameters that change a reply, shared by every backend's identity."""
    return {
        "temperature": jc.temperature,
        "max_tokens": jc.max_tokens,
        "prompt_version": PROMPT_VERSION,
    }


def structured(jc: Judge) -> Structured:
    """The API judges' identity entry for structured output (absent on the paper's
    free-text path, so its cache keys stay as they were)."""
    from advisor_repro.judges.schemas import SCHEMA_VERSION

    return {"structured": SCHEMA_VERSION} if jc.structured else {}
