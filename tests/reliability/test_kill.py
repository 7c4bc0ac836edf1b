"""Scenario 1: `kill -9` in the middle of each long stage and between stages, then `repro all`
again: it resumes, nothing finished is lost or recomputed, and the verify table equals the
uninterrupted run's.

One run directory is killed four times at deterministic points, each found by polling what
the stage writes as it goes (the step log, the answer log, the judge's reply cache), then
finished. The whole process group gets SIGKILL: `repro` and its training process.
"""

from __future__ import annotations

import pytest

from advisor_repro.files import read_json, read_jsonl

from .conftest import (
    PROFILE,
    assert_no_secrets,
    complete_lines,
    kill_group,
    records,
    run_repro,
    start_repro,
    states,
    verify_table,
    wait_until,
)

EARLY = ("preflight", "data", "audit-data")


def _kill_when(log, args, predicate, what: str, timeout: float = 900) -> None:
    proc = start_repro(log, *args)
    wait_until(predicate, proc, timeout, what)
    kill_group(proc)


def _unchanged(before: dict[str, dict], after: dict[str, dict]) -> None:
    """Every stage finished before a kill keeps its completion record (a rerun rewrites it)."""
    for stage, rec in before.items():
        assert after.get(stage) == rec, f"{stage} was recomputed or lost"


@pytest.mark.slow
def test_kill9_in_each_long_stage_and_between_stages_then_resume(reference_run, tmp_path):
    run, log = tmp_path / "run", tmp_path / "repro.log"
    args = ("all", *PROFILE, "--run-dir", str(run))

    # 1. in the middle of segment 1: step 3 is logged, so checkpoint-2 is complete
    steps1 = run / "train-1/steps.jsonl"
    _kill_when(log, args, lambda: complete_lines(steps1) >= 3, "segment 1's step 3")
    done1 = records(run)
    assert set(done1) == set(EARLY)
    assert states(run)["train-1"] == "partial"
    kept_steps = read_jsonl(steps1)[:2]

    # 2. between stages: the moment handoff's completion record is on disk
    _kill_when(log, args, lambda: (run / "handoff/done.json").is_file(), "handoff's record")
    done2 = records(run)
    _unchanged(done1, done2)
    s1 = read_json(run / "train-1/summary.json")
    assert s1["resumed_from"] == "checkpoint-2" and s1["optimizer_steps"] == 6
    rows = read_jsonl(steps1)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]  # continued, no step twice
    assert rows[:2] == kept_steps  # the checkpointed steps were not trained again

    # 3. in generate: the base model's answers (8 prompts x 2 caps, one batch) are on disk
    answers = run / "generate/answers.jsonl"
    _kill_when(log, args, lambda: complete_lines(answers) >= 16, "the base model's answers")
    done3 = records(run)
    _unchanged(done2, done3)
    assert {"train-2", "control"} <= set(done3) and "generate" not in done3
    first_answers = answers.read_bytes()[: answers.read_bytes().index(b"\n") + 1]
    n_kept = complete_lines(answers)

    # 4. in judge: two of its four replies are in the cache
    cache = run / "judge/cache"
    _kill_when(log, args, lambda: len(list(cache.glob("*.json"))) >= 2, "two judge replies")
    done4 = records(run)
    _unchanged(done3, done4)
    g = read_json(run / "generate/summary.json")
    assert g["resumed_answers"] == n_kept and g["generated_this_run"] == 32 - n_kept
    assert answers.read_bytes().startswith(first_answers)
    paid = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in cache.glob("*.json")}
    assert states(run)["judge"] == "partial"

    # 5. to the end
    log_before = log.read_text()
    assert run_repro(log, *args) == 0
    out = log.read_text()[len(log_before):]
    for stage in done4:
        assert f"[{stage}] up to date, skipped" in out
    assert "[judge] resuming" in out
    _unchanged(done4, records(run))
    now = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in cache.glob("*.json")}
    assert {name: now.get(name) for name in paid} == paid  # replies paid for: untouched
    j = read_json(run / "judge/summary.json")
    assert j["calls"] == {"paid": 4 - len(paid), "cached": len(paid)}
    assert states(run) == dict.fromkeys(states(run), "done")

    # the same table as the uninterrupted run, value for value
    assert verify_table(run) == verify_table(reference_run)
    for name in ("train-1/steps.jsonl", "generate/answers.jsonl"):
        ours, ref = read_jsonl(run / name), read_jsonl(reference_run / name)
        assert _strip_times(ours) == _strip_times(ref), name
    assert_no_secrets(run, log)  # scenario 10: nor in what a killed run leaves behind


def _strip_times(rows: list[dict]) -> list[dict]:
    """Rows without their wall-clock fields (elapsed, seconds, mem): those differ run to run."""
    return [{k: v for k, v in r.items() if k not in ("elapsed", "seconds", "mem")} for r in rows]
