"""The ask-parse-retry loop: every question of a round asked together (batched or
concurrent where the backend can), each reply parsed strictly, a malformed one asked again with
the reply and the problem shown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from advisor_repro.judges.cache import CachedJudge, MissingReply
from advisor_repro.judges.rubric import (
    Messages,
    ReplyError,
    parse_answer,
    parse_claim,
    parse_pair,
    retry_messages,
)

TASK_OF: dict[Callable[[str], dict[str, Any]], str] = {
    parse_pair: "pair", parse_claim: "claim", parse_answer: "answer"}


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
