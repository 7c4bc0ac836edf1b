"""The ask-parse-retry loop: every question of a round asked together (batched or
concurrent where the backend can), each reply parsed strictly, a malformed one asked again with
the reply and the problem shown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NotRequired, TypedDict, TypeVar

from advisor_repro.judges.cache import CachedJudge, MissingReply
from advisor_repro.judges.rubric import (
    Messages,
    Parsed,
    ReplyError,
    parse_answer,
    parse_claim,
    parse_pair,
    retry_messages,
)

TASK_OF: dict[Callable[[str], Parsed], str] = {
    parse_pair: "pair", parse_claim: "claim", parse_answer: "answer"}

P = TypeVar("P", bound=Parsed)  # the parsed reply of one task


class ReplyRecord(TypedDict):
    """The bookkeeping fields every stage writes next to the parsed values."""

    status: str
    attempts: int
    cache_key: str
    errors: NotRequired[list[str]]  # not "ok" only
    raw: NotRequired[str]


@dataclass
class Reply(Generic[P]):
    """One answered question: the parsed reply, or why there is none."""

    status: str  # "ok" | "unparseable" | "missing" (replay file has no reply)
    parsed: P | None
    raw: str  # the last reply text
    attempts: int
    cache_key: str
    errors: list[str] = field(default_factory=list)

    def record(self) -> ReplyRecord:
        """Bookkeeping fields every stage writes next to the parsed values."""
        out: ReplyRecord = {
            "status": self.status,
            "attempts": self.attempts,
            "cache_key": self.cache_key,
        }
        if self.status != "ok":
            out["errors"] = self.errors
            out["raw"] = self.raw[:2000]
        return out


@dataclass
class Question(Generic[P]):
    """One independent question: its messages, the strict parser of its reply, its key."""

    messages: Messages
    parse: Callable[[str], P]
    key: str


def ask_all(judge: CachedJudge, questions: Sequence[Question[P]], parse_retries: int
            ) -> list[Reply[P]]:
    """Ask every question (batched where the backend can), parse strictly, and ask a
    malformed reply's question again with the reply and the problem shown, at most
    `parse_retries` times. Never raises for a bad reply: it becomes an "unparseable" Reply
    that the statistics count separately."""
    replies: list[Reply[P] | None] = [None] * len(questions)
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
    parse: Callable[[str], P],
    key: str,
    parse_retries: int,
) -> Reply[P]:
    """One question: ask_all of one."""
    return ask_all(judge, [Question(messages, parse, key)], parse_retries)[0]
