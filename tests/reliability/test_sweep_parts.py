"""The crash sweep's parts that need no replay: the schedule and the comparison's rules."""

import fnmatch
import json
from pathlib import Path

from .compare import normalised
from .sweep import KillPoint, Reference, chains, interleaved, schedule


def test_the_schedule_is_seeded_and_splits_writes_and_times():
    points = schedule(29, kills=6, terms=2, writes=101, seconds=500.0)
    assert points == schedule(29, kills=6, terms=2, writes=101, seconds=500.0)
    assert points != schedule(30, kills=6, terms=2, writes=101, seconds=500.0)
    assert [p.signal for p in points] == ["KILL"] * 6 + ["TERM"] * 2
    at_writes = [p for p in points if p.write]
    assert len(at_writes) == 4 and all(1 <= p.write <= 101 for p in at_writes)
    assert {p.phase for p in at_writes} <= {"before", "mid", "after"}
    assert all(1.0 <= p.seconds <= 500.0 for p in points if not p.write)
    # run in an order that spreads the SIGTERM points through the sweep
    order = [p.signal for p in interleaved(points)]
    assert sorted(order) == sorted(p.signal for p in points)
    assert order == ["KILL", "TERM", "KILL", "KILL", "KILL", "TERM", "KILL", "KILL"]


def _b(obj) -> bytes:
    return json.dumps(obj).encode()


def test_a_record_is_compared_without_its_times_and_the_hashes_of_timed_files():
    rec = {"seconds": 1.0, "finished": 5.0, "figures": {"tok/s": 3.0, "steps": 6},
           "outputs": {"summary.json": "aa", "adapter/adapter_model.safetensors": "cc"},
           "inputs": {"files": {"train-1/summary.json": "aa", "data/train_text.jsonl": "dd"}}}
    other = {**rec, "seconds": 9.0, "finished": 7.0, "figures": {"tok/s": 4.0, "steps": 6},
             "outputs": {**rec["outputs"], "summary.json": "bb"},
             "inputs": {"files": {"train-1/summary.json": "bb", "data/train_text.jsonl": "dd"}}}
    assert normalised("train-1/done.json", _b(rec)) == normalised("train-1/done.json", _b(other))
    # a hash of a file without named fields, or a figure that is not a time, still counts
    changed = {**other, "outputs": {**other["outputs"], "adapter/adapter_model.safetensors": "x"}}
    assert normalised("train-1/done.json", _b(changed)) != normalised("train-1/done.json",
                                                                      _b(rec))
    steps = {**other, "figures": {"tok/s": 4.0, "steps": 5}}
    assert normalised("train-1/done.json", _b(steps)) != normalised("train-1/done.json", _b(rec))


def test_step_rows_keep_their_losses_and_the_disk_check_only_loses_its_text():
    row = {"step": 1, "loss": 3.1, "elapsed": 1.0, "mem": {"rss_gib": 1.5}}
    later = {**row, "elapsed": 2.0, "mem": {"rss_gib": 1.7}}
    rel = "train-1/steps.jsonl"
    assert normalised(rel, _b(row) + b"\n") == normalised(rel, _b(later) + b"\n")
    assert normalised(rel, _b(row) + b"\n") != normalised(rel, _b({**later, "loss": 3.2}) + b"\n")
    report = {"decision": {"checks": [{"name": "disk", "detail": "81.2 GB free", "ok": True},
                                      {"name": "dtype", "detail": "fp32 on cpu", "ok": True}]}}
    freer = json.loads(json.dumps(report))
    freer["decision"]["checks"][0]["detail"] = "80.0 GB free"
    assert normalised("preflight/report.json", _b(report)) == normalised(
        "preflight/report.json", _b(freer))
    freer["decision"]["checks"][1]["detail"] = "fp16 on cpu"
    assert normalised("preflight/report.json", _b(report)) != normalised(
        "preflight/report.json", _b(freer))


def test_a_file_without_named_fields_is_compared_byte_for_byte():
    assert normalised("judge/verdicts.jsonl", b'{"time": 1}\n') == b'{"time": 1}\n'
    assert normalised("metrics/summary.json", b"{}") == b"{}"


def test_a_folder_input_holding_a_timed_file_is_named_and_others_are_not():
    def rec(bundle, adapter):
        return _b({"inputs": {"files": {"handoff/bundle": bundle, "train-1/adapter": adapter}}})
    rel = "train-2/done.json"
    # handoff/bundle/handoff.json holds its `created` time: the bundle's tree hash follows it
    assert normalised(rel, rec("tree:a", "tree:c")) == normalised(rel, rec("tree:b", "tree:c"))
    assert normalised(rel, rec("tree:a", "tree:c")) != normalised(rel, rec("tree:a", "tree:d"))


def test_chains_order_each_replays_points_and_name_writes_by_their_path():
    run = Path("/w/ref/run")
    trace = [(i, ph, f"stage{i}/out[{i}].json") for i in range(1, 11) for ph in ("before", "mid")]
    ref = Reference(run, 100.0, trace)
    points = [KillPoint("KILL", 8, "mid"), KillPoint("TERM", seconds=30.0),
              KillPoint("KILL", 2, "before"), KillPoint("KILL", seconds=90.0),
              KillPoint("KILL", 5, "after")]
    assert chains(points, ref, 1) == [[p] for p in points]
    first, second = chains(points, ref, 3)
    # ordered by where they fall in the reference: write 2 (0.2), 30 s (0.3), write 8 (0.8)
    assert [p.signal for p in first] == ["KILL", "TERM", "KILL"]
    assert first[0] == KillPoint("KILL", path="*/stage2/out[[]2].json", phase="before")
    assert first[1].seconds == 10.0  # 0.3 - 0.2 of the reference's 100 s after the first stop
    # the pattern matches the replay's own path of that file, and no other file
    assert fnmatch.fnmatch("/w/rep/run/stage8/out[8].json", first[2].path)
    assert not fnmatch.fnmatch("/w/rep/run/stage8/out8.json", first[2].path)
    assert [p.seconds or p.path for p in second] == ["*/stage5/out[[]5].json", 40.0]


def test_generates_record_is_compared_without_the_counts_of_this_run():
    # a resumed generate kept 16 answers and generated 16: its record's figures say so
    rec = {"stage": "generate", "figures": {"answers": 32, "generated": 32, "resumed": 0}}
    resumed = {"stage": "generate", "figures": {"answers": 32, "generated": 16, "resumed": 16}}
    rel = "generate/done.json"
    assert normalised(rel, _b(rec)) == normalised(rel, _b(resumed))
    fewer = {"stage": "generate", "figures": {"answers": 30, "generated": 16, "resumed": 16}}
    assert normalised(rel, _b(rec)) != normalised(rel, _b(fewer))
