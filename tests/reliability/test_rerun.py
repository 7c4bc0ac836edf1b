"""Scenarios 2, 9 and 12 on copies of the finished reference run, through the real `repro`:

2. A changed input marks exactly the stages that depend on it stale (a --set profile value,
   a dataset file, an adapter file); an unchanged rerun recomputes nothing.
9. A corrupted run directory (a torn JSONL line, a lost done.json) is detected; the affected
   stage reruns and nothing else does.
12. A second `repro` on a run directory in use is refused (exit 8) and corrupts nothing.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from advisor_repro.files import read_json, sha256_file

from .conftest import (
    PROFILE,
    STAGES,
    assert_no_secrets,
    judge_api_double,
    judge_sets,
    kill_group,
    records,
    run_repro,
    start_repro,
    states,
    wait_until,
)

pytestmark = pytest.mark.slow


def ran(log: Path, since: int = 0) -> set[str]:
    """Stages a `repro` run computed (running or resuming), from its log."""
    return set(re.findall(r"^\[([a-z0-9-]+)\] (?:running|resuming):", log.read_text()[since:],
                          re.M))


def stale(run: Path, *extra: str) -> set[str]:
    return {s for s, st in states(run, *extra).items() if st != "done"}


def mtimes(run: Path) -> dict[str, int]:
    """Every file's mtime, but the run's bookkeeping (manifest, lock, latest link)."""
    return {p.relative_to(run).as_posix(): p.stat().st_mtime_ns for p in run.rglob("*")
            if p.is_file() and p.name not in ("manifest.json", ".lock")}


def flip_byte(path: Path, at: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


# ---- 2: staleness ---------------------------------------------------------------------------
def test_unchanged_rerun_recomputes_nothing(run_copy, tmp_path):
    log, before, files = tmp_path / "repro.log", records(run_copy), mtimes(run_copy)
    assert run_repro(log, "all", *PROFILE, "--run-dir", str(run_copy)) == 0
    assert f"(0 ran, {len(STAGES)} up to date)" in log.read_text() and ran(log) == set()
    assert records(run_copy) == before
    assert mtimes(run_copy) == files  # not one output file rewritten


def test_changed_profile_value_reruns_exactly_its_dependents(run_copy, reference_run, tmp_path):
    log, before = tmp_path / "repro.log", records(run_copy)
    change = "metrics.bootstrap_resamples=500"
    # verify holds the metrics section in its config; report only reads metrics' files
    assert stale(run_copy, change) == {"metrics", "verify"}
    assert run_repro(log, "all", *PROFILE, "--set", change, "--run-dir", str(run_copy)) == 0
    assert ran(log) == {"metrics", "verify", "report"}
    after = records(run_copy)
    for stage in set(STAGES) - {"metrics", "verify", "report"}:
        assert after[stage] == before[stage], stage
    summary = read_json(run_copy / "metrics/summary.json")
    ref = read_json(reference_run / "metrics/summary.json")
    cap = next(k for k in summary if k.isdigit())
    f1, ref_f1 = summary[cap]["bertscore_f1"], ref[cap]["bertscore_f1"]
    assert (f1["base"], f1["ft"]) == (ref_f1["base"], ref_f1["ft"])  # same answers, same means
    assert f1["ci_low"] != ref_f1["ci_low"]  # a CI from 500 resamples, not 1,000
    assert stale(run_copy, change) == set()


def test_changed_dataset_file_makes_its_readers_stale(run_copy):
    """data/test_text.jsonl is read by segment 2 and the control (held-out loss) only."""
    path = run_copy / "data/test_text.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-1]), encoding="utf-8")  # one conversation fewer
    assert stale(run_copy) == {"data", "train-2", "control"}
    st = states(run_copy)
    assert st["data"] == "stale" and st["train-1"] == "done" and st["generate"] == "done"


def test_changed_adapter_file_makes_its_readers_stale(run_copy):
    flip_byte(run_copy / "train-2/adapter/adapter_model.safetensors")
    assert stale(run_copy) == {"train-2", "generate"}
    flip_byte(run_copy / "train-2/adapter/adapter_model.safetensors")  # back as it was
    assert stale(run_copy) == set()
    flip_byte(run_copy / "handoff/bundle/adapter_model.safetensors")
    assert stale(run_copy) == {"handoff", "train-2", "generate"}


def test_changed_local_dataset_folder_reruns_data_then_its_readers(tmp_path):
    """data.source = a local folder: an edited file there makes `data` and `audit-data` (which
    audits the source itself) stale; after they rerun, only the stages reading a changed file
    follow (the eval prompts and the training text are unchanged when a test conversation
    outside the draw is edited)."""
    from advisor_repro.files import read_jsonl
    from advisor_repro.smokedata import smoke_dataset, write_splits

    src, run, log = tmp_path / "src", tmp_path / "run", tmp_path / "repro.log"
    splits, _ = smoke_dataset()
    write_splits(splits, src)
    args = (*PROFILE, "--set", f"data.source='{src}'", "--run-dir", str(run))
    extra = (f"data.source='{src}'",)
    for stage in ("preflight", "data", "audit-data"):
        assert run_repro(log, stage, *args) == 0
    before = {f: sha256_file(run / "data" / f) for f in ("train_text.jsonl", "eval_prompts.jsonl",
                                                         "test.jsonl")}
    drawn = {p["dataset_index"] for p in read_jsonl(run / "data/eval_prompts.jsonl")}
    i = min(set(range(len(splits["test"]))) - drawn)
    splits["test"][i]["conversations"][1]["value"] += " Edited."
    write_splits(splits, src)
    assert {s for s, st in states(run, *extra).items() if st == "stale"} == {"data", "audit-data"}
    since = len(log.read_text())
    assert run_repro(log, "data", *args) == 0 and run_repro(log, "audit-data", *args) == 0
    assert ran(log, since) == {"data", "audit-data"}
    assert sha256_file(run / "data/test.jsonl") != before["test.jsonl"]
    for f in ("train_text.jsonl", "eval_prompts.jsonl"):  # what train-1 and generate read
        assert sha256_file(run / "data" / f) == before[f]
    since = len(log.read_text())
    assert run_repro(log, "data", *args) == 0 and ran(log, since) == set()


# ---- 9: a corrupted run directory -------------------------------------------------------------
def test_torn_jsonl_line_and_lost_record_rerun_only_their_stages(run_copy, reference_run,
                                                                  tmp_path):
    log, before = tmp_path / "repro.log", records(run_copy)
    verdicts = run_copy / "judge/verdicts.jsonl"
    data = verdicts.read_bytes()
    verdicts.write_bytes(data[: len(data) - 40])  # the last line torn mid-record
    (run_copy / "metrics/done.json").unlink()  # a lost completion record
    st = states(run_copy)
    # audit reads the verdicts too: stale now, up to date again once judge has rewritten them
    assert {s for s, v in st.items() if v != "done"} == {"judge", "audit", "metrics"}
    assert st["judge"] == "stale" and st["audit"] == "stale" and st["metrics"] == "pending"
    assert run_repro(log, "all", *PROFILE, "--run-dir", str(run_copy)) == 0
    # verify and report (seconds) follow only because judge/summary.json records how many
    # replies this run paid for and how many came from the cache: {"paid": 0, "cached": 4} now
    assert ran(log) == {"judge", "metrics", "verify", "report"}
    assert "[audit] up to date, skipped" in log.read_text()
    after = records(run_copy)
    for stage in set(STAGES) - {"judge", "metrics", "verify", "report"}:
        assert after[stage] == before[stage], stage
    # the judge's replies came from its cache: nothing asked twice, the same verdicts
    assert read_json(run_copy / "judge/summary.json")["calls"] == {"paid": 0, "cached": 4}
    for name in ("judge/verdicts.jsonl", "judge/mapping.json", "metrics/summary.json",
                 "metrics/per_item.jsonl", "verify/verify.json"):
        assert sha256_file(run_copy / name) == sha256_file(reference_run / name), name


# ---- 12: two processes on one run directory -------------------------------------------------
class GatedAPI(judge_api_double()):
    """The judge API double, holding every request until `gate` is set: the first `repro`
    is then inside its judge stage, holding the run directory, for as long as the test needs."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived, self.gate = threading.Event(), threading.Event()

    def handle(self, h) -> None:
        self.arrived.set()
        self.gate.wait(300)
        super().handle(h)


def test_second_repro_on_a_busy_run_dir_is_refused_and_nothing_is_corrupted(run_copy,
                                                                            tmp_path):
    log, log2 = tmp_path / "first.log", tmp_path / "second.log"
    before = records(run_copy)
    invocations = len(read_json(run_copy / "manifest.json")["invocations"])
    api = GatedAPI()
    sets = judge_sets(api.url, timeout_s=300.0)  # the gate holds the first request
    first = start_repro(log, "judge", *PROFILE, *[a for s in sets for a in ("--set", s)],
                        "--run-dir", str(run_copy))
    try:
        wait_until(api.arrived.is_set, first, 120, "the first repro to ask the judge")
        for args in (("all", *PROFILE), ("judge", *PROFILE), ("status", *PROFILE)):
            code = run_repro(log2, *args, "--run-dir", str(run_copy))
            assert code == (0 if args[0] == "status" else 8), args[0]
        assert first.poll() is None  # still inside its stage: the refusals met a held lock
        api.gate.set()
        assert first.wait(timeout=600) == 0
    finally:
        api.gate.set()
        if first.poll() is None:
            kill_group(first)
        first.log_handle.close()
        api.close()
    text = log2.read_text()
    busy = rf"another repro process \(pid {first.pid}\) is using {re.escape(str(run_copy))}"
    assert len(re.findall(busy, text)) == 2  # the holder is named by its pid
    assert "fix: wait for it to finish, or pick another --run-dir" in text
    after = records(run_copy)
    assert after["judge"]["finished"] > before["judge"]["finished"]  # the first one ran
    for stage in set(STAGES) - {"judge"}:
        assert after[stage] == before[stage], stage
    assert len(api.requests) == 4  # each question once: nothing interleaved or repeated
    st = states(run_copy, *sets)
    # the stages holding the judge section in their config are stale by that change alone
    assert {s for s, v in st.items() if v != "done"} == {"audit", "audit-training", "verify",
                                                         "report"}
    # only the first process was recorded in the manifest; the refused ones wrote nothing
    assert len(read_json(run_copy / "manifest.json")["invocations"]) == invocations + 1
    assert_no_secrets(run_copy, log, log2)
