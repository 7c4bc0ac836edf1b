"""Scenario 16: the disk fills up during a write.

`repro data` runs under RLIMIT_FSIZE = 64 KiB (with SIGXFSZ ignored, a write past it fails with
EFBIG, as one past a full disk fails with ENOSPC): data/train.jsonl (~110 KiB on the smoke set)
cannot be written. The command exits 5 naming that path; no temp file is left; preflight's
record and outputs are unchanged; the rerun without the limit completes.
"""

from __future__ import annotations

import resource
import signal
import subprocess

from advisor_repro.files import hash_tree

from .conftest import PROFILE, env, records, repro_cmd, run_repro, states

LIMIT = 64 * 1024  # bytes a file may grow to


def _file_size_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the writer
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def test_disk_full_during_a_write_names_the_path_keeps_earlier_outputs_and_rerun_completes(
        tmp_path):
    run, log = tmp_path / "run", tmp_path / "repro.log"
    assert run_repro(log, "preflight", *PROFILE, "--run-dir", str(run)) == 0
    before, preflight = records(run), hash_tree(run / "preflight")
    proc = subprocess.run(repro_cmd("data", *PROFILE, "--run-dir", str(run)),
                          capture_output=True, text=True, env=env(), cwd=tmp_path,
                          preexec_fn=_file_size_limit, timeout=600, check=False)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert f"the disk is full: could not write {run}/data/train.jsonl (File too large)" \
        in proc.stderr
    assert f"fix: free disk at {run}/data" in proc.stderr and "rerun the same command" \
        in proc.stderr
    assert not list(run.rglob("*.tmp"))  # the half-written file was removed
    assert not (run / "data/train.jsonl").exists()
    assert records(run) == before and hash_tree(run / "preflight") == preflight
    assert states(run)["data"] == "failed"

    assert run_repro(log, "data", *PROFILE, "--run-dir", str(run)) == 0
    assert states(run)["data"] == "done"
    assert (run / "data/train.jsonl").stat().st_size > LIMIT
    assert records(run)["preflight"] == before["preflight"]
