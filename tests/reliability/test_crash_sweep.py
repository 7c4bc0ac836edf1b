"""The crash sweep (sweep.py) in the default run: one replay stopped at a few of the places
where such systems lose work, each in the next run of the same command, then finished; it must
end as the uninterrupted run did (`compare.compare`: every stage done, verify's table, every
file byte-identical but for the fields compare.py names, nothing left behind).

The full sweep (seeded points at any write or time, one replay each) is `nox -s sweep`; its
last result is in README.md.
"""

from __future__ import annotations

import shutil
import signal

import pytest

from advisor_repro.files import read_json, read_jsonl

from .conftest import PROFILE, _group_alive, wait_until
from .sweep import KillPoint, Reference, finish, replay, start

# In replay order: each is the first write matching the pattern in the run it stops.
CHAIN = [
    # segment 1 finished, its record's temp file written but not renamed: no record yet
    KillPoint("KILL", path="*/train-1/done.json", phase="mid"),
    # the handoff bundle copied into its temp folder, not yet renamed into place
    KillPoint("KILL", path="*/handoff/bundle", phase="mid"),
    # generate's record in place, its started.json not yet removed
    KillPoint("KILL", path="*/generate/done.json", phase="after"),
    # the first judge reply renamed into the cache; `docker stop` outside training
    KillPoint("TERM", path="*/judge/cache/*.json", phase="after"),
    # the report's first page in a temp file
    KillPoint("KILL", path="*/report/report.html", phase="mid"),
]


@pytest.mark.slow
def test_a_replay_stopped_at_each_risky_write_resumes_to_the_same_bytes(reference_run,
                                                                          tmp_path):
    # the replay's path has the reference's name and length (compare.py: a pickled path in a
    # checkpoint is length-prefixed)
    run = reference_run.parents[1] / ("r" * len(reference_run.parent.name)) / reference_run.name
    outcome = replay(CHAIN, Reference(reference_run, 0.0, []), list(PROFILE), run,
                     tmp_path / "logs")
    stops = outcome["stops"]
    assert [s["landed"] and s["landed"].split("/")[0] for s in stops] == [
        "train-1", "handoff", "generate", "judge", "report"], stops
    kill, term = -signal.SIGKILL, -signal.SIGTERM
    # SIGTERM outside training: Python's default action, the process ends at once
    assert [s["rc"] for s in stops] == [kill, kill, kill, term, kill]
    assert outcome["resumes"] == [0]
    assert outcome["problems"] == [], outcome["problems"]
    # segment 1 resumed at its last checkpoint trained nothing more (it once trained step 7)
    assert [r["step"] for r in read_jsonl(run / "train-1/steps.jsonl")] == [1, 2, 3, 4, 5, 6]
    summary1 = read_json(run / "train-1/summary.json")
    assert summary1["resumed_from"] == "checkpoint-6"
    # the peak memory is over the whole run, the kept steps included (none trained after)
    kept = [r["mem"] for r in read_jsonl(run / "train-1/steps.jsonl")]
    assert summary1["memory_peak"] == {k: max(m[k] for m in kept) for k in kept[0]}
    log = (tmp_path / "logs" / "repro.log").read_text()
    assert "removed 1 temporary file(s) left by a killed write: train-1/.done.json." in log
    assert "removed 1 temporary file(s) left by a killed write: handoff/.bundle." in log


@pytest.mark.slow
def test_sigterm_during_the_handoff_check_leaves_no_process_writing_into_the_run(run_copy,
                                                                                 tmp_path):
    """The handoff's load check runs in a fresh process; SIGTERM to `repro` while it runs
    must not leave it writing into the run directory once `repro` is gone, where it would
    race the resumed handoff (found reading the sweep's crash points; training processes
    already die with `repro`)."""
    run = run_copy
    shutil.rmtree(run / "handoff")
    crash = tmp_path / "crash"
    crash.mkdir()
    # held in the fresh process, just before it writes its verdict for `repro`
    (crash / "target").write_text("*/handoff/verified.tmp.json before\n")
    proc = start(["handoff", *PROFILE, "--run-dir", str(run)], tmp_path / "repro.log", crash)
    hit = crash / "hit"
    wait_until(hit.exists, proc, 600, "the load check's write")
    proc.send_signal(signal.SIGTERM)
    assert finish(proc) == -signal.SIGTERM
    hit.unlink()  # a check still alive would go on and write now
    wait_until(lambda: not _group_alive(proc.pid), None, 30, "repro's processes to end")
    assert not (run / "handoff" / "verified.tmp.json").exists()
    assert not (run / "handoff" / "verified.json").exists()
