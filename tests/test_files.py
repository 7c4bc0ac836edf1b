"""files.atomic_folder: a folder appears whole or not at all."""

import time
from pathlib import Path

import pytest

from advisor_repro.files import atomic_folder


def test_a_finished_block_replaces_the_folder(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old").write_text("old")
    with atomic_folder(final) as tmp:
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp folder left


def test_an_error_leaves_the_old_folder_and_no_temp(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(final) as tmp:
        (tmp / "half").write_text("half")
        raise RuntimeError("killed half-way")
    assert sorted(p.name for p in final.iterdir()) == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_without_replace_an_existing_folder_wins(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "theirs").write_text("x")
    with pytest.raises(OSError), atomic_folder(final, replace=False) as tmp:
        (tmp / "ours").write_text("y")
    assert sorted(p.name for p in final.iterdir()) == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# ---- crash points (the crash sweep's hook, tests/reliability/sweep.py) ---------------------
WRITER = """
import sys
from pathlib import Path
from advisor_repro.files import atomic_folder, write_json
out = Path(sys.argv[1])
write_json(out / "a.json", {"a": 1})
with atomic_folder(out / "bundle") as tmp:
    (tmp / "x").write_text("x")
write_json(out / "b.json", {"b": 2})
"""


def _writer(tmp_path, crash, **popen):
    import os
    import subprocess
    import sys

    from advisor_repro.files import CRASH_POINTS_ENV

    env = {**os.environ, CRASH_POINTS_ENV: str(crash)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "out")], env=env,
                            **popen)


def test_crash_points_number_every_write_across_its_three_phases(tmp_path):
    crash = tmp_path / "crash"
    crash.mkdir()
    assert _writer(tmp_path, crash).wait(timeout=60) == 0
    trace = [line.split(" ") for line in (crash / "trace").read_text().splitlines()]
    got = [(int(i), phase, Path(p).name) for i, phase, _pid, p in trace]
    assert got == [(i, ph, name) for i, name in ((1, "a.json"), (2, "bundle"), (3, "b.json"))
                   for ph in ("before", "mid", "after")]
    assert (crash / "counter").read_text() == "3\n"


def test_a_crash_point_target_holds_the_write_until_released(tmp_path):
    import signal

    crash = tmp_path / "crash"
    crash.mkdir()
    (crash / "target").write_text("*/bundle mid\n")  # the folder built, not yet renamed
    proc = _writer(tmp_path, crash)
    hit = crash / "hit"
    deadline = time.monotonic() + 60
    while not hit.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert hit.read_text().split(" ")[:2] == ["2", "mid"]
    time.sleep(0.3)
    out = tmp_path / "out"
    # held: a.json written, the bundle's temp folder full but not in place, b.json not begun
    assert (out / "a.json").is_file() and not (out / "bundle").exists()
    assert not (out / "b.json").exists()
    assert [p.name for p in out.glob(".bundle.*.tmp")]
    assert not (crash / "target").exists()  # a pattern stops its first match only
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert [p.name for p in out.glob(".bundle.*.tmp")]  # what a kill there leaves behind


def test_released_crash_point_lets_the_write_go_on(tmp_path):
    crash = tmp_path / "crash"
    crash.mkdir()
    (crash / "target").write_text("3 before\n")
    proc = _writer(tmp_path, crash)
    deadline = time.monotonic() + 60
    while not (crash / "hit").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    (crash / "hit").unlink()
    assert proc.wait(timeout=60) == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.json", "bundle"]
