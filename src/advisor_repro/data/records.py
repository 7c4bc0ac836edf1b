"""The records as the `data` stage takes them: each validated (the first bad one stops the
run, named), rendered into the notebooks' training text, the evaluation prompts drawn, the
split sizes compared with the profile's. Pure: records in, records or errors out."""

from __future__ import annotations

from typing import Any

from advisor_repro.config import Data
from advisor_repro.data.source import eval_draw_indices
from advisor_repro.errors import DataError

SPLITS = ("train", "test")
ROLES = ("human", "assistant")
Record = dict[str, Any]


def validate(split: str, records: list[Record]) -> None:
    """Stop at the first bad record, naming split, index and problem."""
    for i, rec in enumerate(records):
        problem = record_problem(rec)
        if problem:
            raise DataError(
                f"{split}[{i}]: {problem}",
                "fix or drop that record in the source; every conversation must alternate "
                "human/assistant turns starting with human, with no empty text "
                "(`repro audit-data` reports the invalid rates over every record, as the "
                "author's evaluate_dataset.py does)",
            )


def record_problem(rec: Any) -> str | None:
    if not isinstance(rec, dict) or not isinstance(rec.get("conversations"), list):
        return "record has no 'conversations' list"
    turns = rec["conversations"]
    if len(turns) < 2:
        return f"only {len(turns)} turn(s); a conversation needs a human and an assistant turn"
    for t, turn in enumerate(turns):
        if not isinstance(turn, dict) or set(turn) < {"from", "value"}:
            return f"turn {t} lacks 'from' or 'value'"
        want = ROLES[t % 2]
        if turn["from"] != want:
            return f"turn {t} is from '{turn['from']}', expected '{want}' (roles must alternate)"
        if not isinstance(turn["value"], str) or not turn["value"].strip():
            return f"turn {t} ({turn['from']}) has empty text"
    return None


def render_training_text(rec: Record, data: Data) -> str:
    """The notebooks' format: `Human: {t}\\n\\n` / `Assistant: {t}</s>\\n\\n`, joined, stripped."""
    parts = []
    for turn in rec["conversations"]:
        if turn["from"] == "human":
            parts.append(f"{data.human_prefix}{turn['value']}\n\n")
        else:
            parts.append(f"{data.assistant_prefix}{turn['value']}{data.eos_text}\n\n")
    return "".join(parts).strip()


def draw_eval_prompts(test: list[Record], n: int, seed: int) -> list[Record]:
    """`random.Random(seed)` shuffle of the test indices, first n; first human turn as prompt,
    first assistant turn as reference (the paper's evaluate script)."""
    if n > len(test):
        raise DataError(
            f"data.eval_prompts = {n} but the test split has {len(test)} conversations",
            f"set --set data.eval_prompts={len(test)} or less",
        )
    return [
        {
            "sample_id": sample_id,
            "dataset_index": idx,
            "prompt": test[idx]["conversations"][0]["value"],
            "reference": test[idx]["conversations"][1]["value"],
        }
        for sample_id, idx in enumerate(eval_draw_indices(len(test), n, seed))
    ]


def check_sizes(splits: dict[str, list[Record]], data: Data) -> list[str]:
    """The paper's split sizes are a structural fact; a different size is a loud warning."""
    warnings = []
    for split, expected in (("train", data.expected_train), ("test", data.expected_test)):
        if expected and len(splits[split]) != expected:
            warnings.append(
                f"{split} split has {len(splits[split])} conversations, "
                f"the profile expects {expected}"
            )
    return warnings
