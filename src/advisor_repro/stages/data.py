"""Stage `data`: load the dataset, validate every record, render the training text, draw the
evaluation prompts.

Pure core: `validate`, `render_training_text`, `draw_eval_prompts`.
Thin I/O: `run`; the loader (`load_splits`: hub, bundled smoke set, stand-in, local folder) and
`fingerprint` are the data wing's (advisor_repro.data), which audit-data reads too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advisor_repro.config import Config, Data
from advisor_repro.data import (
    check_source,
    eval_draw_indices,
    fingerprint,
    load_splits,
    source_caches,
    source_inputs,
)
from advisor_repro.errors import DataError
from advisor_repro.files import write_json, write_jsonl
from advisor_repro.manifest import update_manifest
from advisor_repro.models import hub as models
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult

SPLITS = ("train", "test")
ROLES = ("human", "assistant")
Record = dict[str, Any]


# ---- pure core --------------------------------------------------------------------------------
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


# ---- I/O (the loader is the data wing's, shared with audit-data) -----------------------------


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


def run(cfg: Config, ctx: StageContext) -> StageResult:
    splits, provenance = load_splits(cfg.data)
    for split in SPLITS:
        validate(split, splits[split])
    out = ctx.out
    for split in SPLITS:
        write_jsonl(out / f"{split}.jsonl", splits[split])
        write_jsonl(
            out / f"{split}_text.jsonl",
            (
                {"index": i, "text": render_training_text(r, cfg.data)}
                for i, r in enumerate(splits[split])
            ),
        )
    prompts = draw_eval_prompts(splits["test"], cfg.data.eval_prompts, cfg.data.eval_draw_seed)
    write_jsonl(out / "eval_prompts.jsonl", prompts)
    if "planted" in provenance:
        write_jsonl(out / "planted_errors.jsonl", provenance.pop("planted"))
    fp = {**provenance, "splits": fingerprint(splits)}
    write_json(out / "fingerprint.json", fp)
    update_manifest(ctx.run_dir, "data", fp)
    return StageResult(
        figures={
            "train": len(splits["train"]),
            "test": len(splits["test"]),
            "eval_prompts": len(prompts),
            "revision": provenance["revision"],
        },
        warnings=check_sizes(splits, cfg.data),
    )


def external_inputs(cfg: Config) -> dict[str, str]:
    """A local source folder is an input: editing a file there makes this stage stale."""
    return source_inputs(cfg.data)


def check(cfg: Config, ctx: StageContext) -> None:
    """Before data/ is touched: a local source must be an existing folder."""
    check_source(cfg.data)


def caches(cfg: Config) -> dict[str, Path]:
    """The hub cache, for a dataset the hub supplies."""
    return source_caches(cfg.data)


def estimate(cfg: Config) -> Estimate:
    remote = cfg.data.source.startswith("hf:")
    return Estimate(seconds=30 if remote else 5, disk_bytes=(60 if remote else 5) * 2**20)


STAGE = Stage(
    name="data",
    summary="load + validate the dataset, render training text, draw the 50 eval prompts",
    run=run,
    config=("data",),
    external=external_inputs,
    estimate=estimate,
    check=check,
    caches=caches,
    prerequisites=lambda cfg: list(models.dataset_unavailable(cfg.data.source,
                                                              cfg.data.revision)),
)
