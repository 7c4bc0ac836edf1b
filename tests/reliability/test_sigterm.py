"""Scenario 15: SIGTERM during training (a notebook or cloud session ending, `docker stop`).

`repro train --segment 1` gets SIGTERM after step 3 is logged (the signal goes to `repro` only,
as `docker stop` sends it to PID 1; `repro` passes it on to the training process). The segment
saves a checkpoint of the step in flight and exits 14 with the checkpoint named; status says
`paused`; the same command then resumes from that checkpoint: every step logged once, none
trained twice, and the earlier stages' records untouched.
"""

from __future__ import annotations

import os
import re
import signal

import pytest

from advisor_repro.files import read_json, read_jsonl

from .conftest import PROFILE, complete_lines, records, run_repro, start_repro, states, wait_until

pytestmark = pytest.mark.slow


def test_sigterm_mid_segment_checkpoints_exits_14_and_the_same_command_resumes(tmp_path):
    run, log = tmp_path / "run", tmp_path / "repro.log"
    for stage in ("preflight", "data"):
        assert run_repro(log, stage, *PROFILE, "--run-dir", str(run)) == 0
    before = records(run)
    args = ("train", "--segment", "1", *PROFILE, "--run-dir", str(run))
    steps = run / "train-1/steps.jsonl"
    proc = start_repro(log, *args)
    try:
        wait_until(lambda: complete_lines(steps) >= 3, proc, 900, "segment 1's step 3")
        os.kill(proc.pid, signal.SIGTERM)  # repro only, not its process group
        assert proc.wait(timeout=600) == 14
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.log_handle.close()
    text = log.read_text()
    m = re.search(r"train-1 stopped by SIGTERM after optimizer step (\d+) of 6; "
                  r"checkpoint-(\d+) is saved in ", text)
    assert m and m.group(1) == m.group(2), text[-2000:]
    stopped = int(m.group(1))
    assert 3 <= stopped < 6
    assert "fix: rerun the same command (in a new session): it continues from that step" in text
    ckpt = run / f"train-1/checkpoints/checkpoint-{stopped}"
    assert read_json(ckpt / "trainer_state.json")["global_step"] == stopped
    assert states(run)["train-1"] == "paused"
    assert not (run / "train-1/adapter").exists()  # no final adapter from a cut segment
    kept = read_jsonl(steps)
    assert [r["step"] for r in kept] == list(range(1, stopped + 1))

    assert run_repro(log, *args) == 0
    summary = read_json(run / "train-1/summary.json")
    assert summary["resumed_from"] == f"checkpoint-{stopped}"
    assert summary["optimizer_steps"] == 6
    rows = read_jsonl(steps)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[:stopped] == kept  # the checkpointed steps were not trained again
    assert states(run)["train-1"] == "done"
    after = records(run)
    for stage, rec in before.items():
        assert after[stage] == rec, stage
