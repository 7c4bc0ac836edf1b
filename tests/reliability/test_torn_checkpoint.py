"""Scenario 17 through `repro`: a torn checkpoint (a kill or a full disk during a save).

`repro train --segment 1` (a checkpoint after every step, 3 steps) is killed (-9, the whole
process group) once checkpoint-2 is complete; its adapter weights are then cut to half, as a
save cut short leaves them. The same command resumes: it says checkpoint-2 is incomplete and
removed, resumes from checkpoint-1, trains steps 2 and 3 again and finishes the segment: the
step it trained again equals, value for value, the step 2 logged before the kill. The earlier
stages' records are untouched. Unit level, every kind of torn file:
tests/training/test_checkpoint_resume.py.

Speed: preflight and data run in this process (no model loaded); each training process costs
about 17 s to start on 2 cores, and 2 + 2 steps of about 3 s are trained.
"""

from __future__ import annotations

import json

import pytest

from advisor_repro.cli import main
from advisor_repro.files import read_json, read_jsonl
from advisor_repro.training.checkpoints import last_complete_checkpoint

from .conftest import (
    PROFILE,
    kill_group,
    needs_smoke_model,
    records,
    run_repro,
    start_repro,
    states,
    wait_until,
)

pytestmark = pytest.mark.slow
EXTRA = ("train.checkpoint_every=1", "train.segment1.max_steps=3")  # after PROFILE's values
ARGS = (*PROFILE, *[a for s in EXTRA for a in ("--set", s)])


def complete(ckpt) -> bool:
    """trainer_state.json, which the Trainer writes last, is whole and of this step."""
    try:
        state = json.loads((ckpt / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return state.get("global_step") == int(ckpt.name.rsplit("-", 1)[1])


def without_times(row: dict) -> dict:
    """A step-log row without its wall-clock fields, which differ run to run."""
    return {k: v for k, v in row.items() if k not in ("elapsed", "seconds", "mem")}


def test_a_torn_newest_checkpoint_is_said_removed_and_the_previous_one_resumed(tmp_path):
    needs_smoke_model()
    run, log = tmp_path / "run", tmp_path / "repro.log"
    for stage in ("preflight", "data"):
        assert main([stage, *ARGS, "--run-dir", str(run)]) == 0
    before = records(run)
    args = ("train", "--segment", "1", *ARGS, "--run-dir", str(run))
    ckpts = run / "train-1/checkpoints"

    proc = start_repro(log, *args)
    wait_until(lambda: complete(ckpts / "checkpoint-2"), proc, 600, "checkpoint-2")
    kill_group(proc)
    assert states(run, *EXTRA)["train-1"] == "partial"
    assert sorted(p.name for p in ckpts.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    killed_rows = read_jsonl(run / "train-1/steps.jsonl")
    assert [r["step"] for r in killed_rows] == [1, 2]
    weights = ckpts / "checkpoint-2/adapter_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])  # what a save cut short leaves

    text_before = log.read_text()
    assert run_repro(log, *args) == 0
    out = log.read_text()[len(text_before):]
    assert (f"checkpoint checkpoint-2 is incomplete (adapter_model.safetensors truncated "
            f"({len(data) // 2} of {len(data)} bytes))") in out, out[-3000:]
    assert "removed; resuming from the previous complete one" in out
    assert "[train-1] resuming from checkpoint-1 (step 1); 1 logged steps kept" in out
    summary = read_json(run / "train-1/summary.json")
    assert summary["resumed_from"] == "checkpoint-1" and summary["optimizer_steps"] == 3
    rows = read_jsonl(run / "train-1/steps.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[0] == killed_rows[0]  # kept from before the kill, not trained again
    # trained again from checkpoint-1's weights, optimizer and RNG: the same step 2
    assert without_times(rows[1]) == without_times(killed_rows[1])
    assert (run / "train-1/adapter/adapter_model.safetensors").is_file()
    assert last_complete_checkpoint(ckpts) == ckpts / "checkpoint-3"
    assert states(run, *EXTRA)["train-1"] == "done"
    after = records(run)
    for stage, rec in before.items():
        assert after[stage] == rec, stage
