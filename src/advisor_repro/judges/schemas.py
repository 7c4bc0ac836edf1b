"""The JSON schemas of the judge's three replies (pure: no model, no I/O).

One schema per task of rubric.py, with exactly the keys its parser reads, in the order the
prompt shows them: the pair verdict (scores as integers 0-3, preference a / b / tie, a note
per slot), the claim check (two booleans and a note) and the answer check (hard / medium /
fine, the wrong claim, an abstention flag, a note).

Two variants of each:
- `api_schema(task)`: what an API's structured output is asked for (OpenAI `response_format`
  json_schema with strict, Anthropic tool `input_schema`): types, enums, required keys, no
  others. Notes are left unbounded there: the parser cuts them to 15 words.
- `local_schema(task, max_tokens)`: what the local judge decodes under, token by token. Its
  strings are printable ASCII without quote or backslash, so every character is one byte and
  needs no escape, and the JSON is compact (no whitespace); the notes are bounded so that the
  longest reply the grammar allows, plus the end-of-sequence token, fits `max_tokens` even
  when every token carries a single byte. A reply under the grammar is then complete, and
  parses, by construction (`json_bound`).
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

SCHEMA_VERSION = "schemas-v1"  # part of the judge's identity: a schema change asks again
NOTE_CHARS = 100  # a 15-word note, the paper's bound, is ~100 characters of English
MIN_NOTE_CHARS = 8  # below this a note says nothing: refuse the budget instead
TEXT_PATTERN = r"^[ !#-\[\]-~]*$"  # printable ASCII but the quote and the backslash
TASKS = ("pair", "claim", "answer")


class JsonSchema(TypedDict, total=False):
    """The JSON Schema keywords these schemas use."""

    type: str
    enum: list[int] | list[str]
    properties: dict[str, JsonSchema]
    required: list[str]
    additionalProperties: bool
    maxLength: int
    pattern: str


def _score() -> JsonSchema:
    return {"type": "integer", "enum": [0, 1, 2, 3]}


def _object(props: dict[str, JsonSchema]) -> JsonSchema:
    return {"type": "object", "properties": props, "required": list(props),
            "additionalProperties": False}


def _text(chars: int | None) -> JsonSchema:
    if chars is None:
        return {"type": "string"}
    return {"type": "string", "maxLength": chars, "pattern": TEXT_PATTERN}


def schema(task: str, text_chars: int | None = None) -> JsonSchema:
    """The reply's schema; `text_chars` bounds every free-text field (None = unbounded)."""
    if task == "pair":
        slot = _object({"domain_accuracy": _score(), "helpfulness": _score(),
                        "note": _text(text_chars)})
        return _object({"response_a": slot, "response_b": slot,
                        "preferred": {"type": "string", "enum": ["a", "b", "tie"]}})
    if task == "claim":
        return _object({"asserts_claim": {"type": "boolean"}, "states_fact": {"type": "boolean"},
                        "note": _text(text_chars)})
    if task == "answer":
        return _object({"verdict": {"type": "string", "enum": ["hard", "medium", "fine"]},
                        "claim": _text(text_chars), "abstained": {"type": "boolean"},
                        "note": _text(text_chars)})
    raise ValueError(f"unknown judge task {task!r}; known: {', '.join(TASKS)}")


def api_schema(task: str) -> JsonSchema:
    return schema(task)


def _longest(node: JsonSchema, text_chars: int) -> Any:
    """The instance of `node` with the longest compact JSON text."""
    if node["type"] == "object":
        return {k: _longest(v, text_chars) for k, v in node["properties"].items()}
    if node["type"] == "boolean":
        return False
    if "enum" in node:
        return max(node["enum"], key=lambda v: len(json.dumps(v)))
    return "x" * text_chars


def _strings(node: JsonSchema) -> int:
    if node["type"] == "object":
        return sum(_strings(v) for v in node["properties"].values())
    return int(node["type"] == "string" and "enum" not in node)


def json_bound(task: str, text_chars: int) -> int:
    """Bytes of the longest compact reply the local schema allows (= its worst-case tokens)."""
    doc = _longest(schema(task, text_chars), text_chars)
    return len(json.dumps(doc, separators=(",", ":")))


def text_chars_for(task: str, max_tokens: int) -> int:
    """The longest free-text bound (at most NOTE_CHARS) whose worst-case reply and EOS fit."""
    fixed = json_bound(task, 0)
    per = _strings(schema(task, 0))
    return min(NOTE_CHARS, (max_tokens - 1 - fixed) // per)


def local_schema(task: str, max_tokens: int) -> JsonSchema:
    """The grammar's schema for a reply budget of `max_tokens` (ValueError when too small)."""
    chars = text_chars_for(task, max_tokens)
    if chars < MIN_NOTE_CHARS:
        need = json_bound(task, MIN_NOTE_CHARS) + 1
        raise ValueError(f"judge.max_tokens = {max_tokens} cannot hold the {task} reply under "
                         f"the grammar (it needs at least {need} tokens)")
    return schema(task, chars)


def minimal_reply(task: str) -> str:
    """A short valid reply, to check that a tokenizer can spell the schema."""
    doc = _longest(schema(task, 0), 0)
    return json.dumps(doc, separators=(",", ":"))
