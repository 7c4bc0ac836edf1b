"""The `replay` judge: replies read from a file instead of asked of a model.

Accepted files:
- the paper's released judge-scores CSV (`sample_id,domain_a,help_a,domain_b,help_b,
  preferred_slot,note_a,note_b`): one primary-pass pair verdict per row;
- a `verdicts.jsonl` written by the judge stage (or by `repro import-release`): pair verdicts
  of either pass, unparseable ones replayed as their raw text;
- any JSONL of `{"key": ..., "reply": {...} | "text"}` rows, for the audits' questions
  (keys as in advisor_repro.judges: "answer:train:<index>:<turn>", ...).

A reply is rebuilt as the JSON text the task's parser reads, so replayed verdicts go through
the same strict parser as live ones.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TypedDict

from advisor_repro.errors import ConfigError, DataError
from advisor_repro.files import read_jsonl, sha256_file
from advisor_repro.judges.cache import JudgeIdentity, MissingReply
from advisor_repro.judges.records import VerdictRow
from advisor_repro.judges.rubric import Messages

PAIR_COLUMNS = ("sample_id", "domain_a", "help_a", "domain_b", "help_b", "preferred_slot")


def pair_key(sample_id: str | int, pass_name: str) -> str:
    return f"pair:{sample_id}:{pass_name}"


class SlotReply(TypedDict):
    domain_accuracy: int
    helpfulness: int
    note: str


def pair_reply(row: VerdictRow | dict[str, str]) -> str:
    """A verdict row (a verdicts.jsonl line, or the released CSV's columns as text) as the
    rubric's JSON reply."""
    def slot(s: str) -> SlotReply:
        return {
            "domain_accuracy": int(row[f"domain_{s}"]),
            "helpfulness": int(row[f"help_{s}"]),
            "note": row.get(f"note_{s}") or "",
        }

    return json.dumps(
        {"response_a": slot("a"), "response_b": slot("b"), "preferred": row["preferred_slot"]}
    )


def _from_csv(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in PAIR_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(
                f"{path}: not a judge-scores file, columns {missing} are missing",
                "use the released judge-scores CSV or a verdicts.jsonl",
            )
        replies = {}
        for lineno, row in enumerate(reader, start=2):
            try:
                replies[pair_key(row["sample_id"].strip(), "primary")] = pair_reply(row)
            except (TypeError, ValueError) as exc:
                raise DataError(f"{path}:{lineno}: bad score ({exc})", "fix that row") from exc
        return replies


def _from_jsonl(path: Path) -> dict[str, str]:
    try:
        rows = read_jsonl(path)
    except ValueError as exc:
        raise DataError(str(exc), "repair or remove that line") from exc
    replies = {}
    for i, row in enumerate(rows, start=1):
        if "key" in row and "reply" in row:
            reply = row["reply"]
            replies[row["key"]] = reply if isinstance(reply, str) else json.dumps(reply)
        elif "sample_id" in row:
            key = pair_key(row["sample_id"], row.get("pass", "primary"))
            ok = row.get("status", "ok") == "ok"
            replies[key] = pair_reply(row) if ok else row.get("raw", "")
        else:
            raise DataError(
                f"{path}:{i}: a row needs 'key' and 'reply', or a verdict's 'sample_id'",
                "see advisor_repro/judges/replay.py for the accepted formats",
            )
    return replies


class ReplayJudge:
    def __init__(self, path: Path, replies: dict[str, str]) -> None:
        self.replies = replies
        self.identity: JudgeIdentity = {
            "backend": "replay",
            "model": "replay",
            "file": path.name,
            "file_sha256": sha256_file(path),
        }

    @classmethod
    def from_file(cls, name: str) -> ReplayJudge:
        path = Path(name).expanduser()
        if not name or not path.is_file():
            raise ConfigError(
                f"judge.backend = 'replay' needs judge.replay_file, a file that exists "
                f"(got {name!r})",
                "--set judge.replay_file=/path/to/judge_scores.csv (or a verdicts.jsonl)",
            )
        reader = _from_csv if path.suffix.lower() == ".csv" else _from_jsonl
        return cls(path, reader(path))

    def complete(self, messages: Messages, key: str, task: str = "") -> str:
        if key not in self.replies:
            raise MissingReply(f"the replay file has no reply for {key}")
        return self.replies[key]

    def close(self) -> None:
        pass
