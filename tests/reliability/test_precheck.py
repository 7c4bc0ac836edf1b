"""Scenario 14: a stage that cannot run changes nothing (issue 17), for every registered stage.

A run directory holds a result in every stage folder and every declared input of every stage.
Each row takes away what one stage needs (its declared inputs; for the stages that declare none,
the outside input they check first), runs that stage through `repro`, and asserts the refusal
(exit code, the message naming what is missing, a fix) and a byte-identical run directory: every
file's sha256 before and after, manifest.json included (only the lock file may appear).
The stages with no run-directory input at all (preflight, report) are refused because the run
directory cannot be written: `repro` runs as a user without write permission there.
"""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from advisor_repro import pipeline
from advisor_repro.cli import main
from advisor_repro.files import hash_tree, write_json

from .conftest import env, repro_cmd

STAGES = pipeline.stages()
NO_RUN_DIR_INPUT = {"preflight", "report"}  # their inputs are the device / optional files


def command(stage: str) -> list[str]:
    return ["train", "--segment", stage[-1]] if stage in ("train-1", "train-2") else [stage]


def fill(run) -> None:
    """A result in every stage folder, every declared input present, a manifest (smoke)."""
    for s in STAGES:
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


def tree(run) -> dict[str, str]:
    return {k: v for k, v in hash_tree(run).items() if k != ".lock"}


def remove(path) -> None:
    if path.is_dir():
        import shutil

        shutil.rmtree(path)
    else:
        path.unlink()


# stage -> (extra arguments, expected exit code, words of the message) for the stages that
# declare no input files: what they check first instead
OUTSIDE = {
    "data": (["--set", "data.source='/nonexistent/dataset'"], 3,
             ["data.source '/nonexistent/dataset'", "fix: point --set data.source=PATH"]),
    "verify": (["--set", "verify.expected='/nonexistent/expected.toml'"], 2,
               ["no expected-ranges file", "fix: set verify.expected"]),
}


@pytest.mark.parametrize("stage", [s for s in STAGES if s.name not in NO_RUN_DIR_INPUT],
                         ids=lambda s: s.name)
def test_a_stage_missing_its_inputs_refuses_and_changes_nothing(stage, tmp_path, capsys):
    run = tmp_path / "run"
    fill(run)
    extra, code, words = OUTSIDE.get(stage.name, ([], 7, []))
    for rel in stage.needs:
        remove(run / rel)
    if stage.needs:
        producer = stage.needs[0].split("/")[0]
        words = [f"stage '{stage.name}' needs {', '.join(stage.needs[:3])}",
                 "nothing was changed",
                 f"fix: run the earlier stage first: repro {producer} --run-dir {run}"]
    before = tree(run)
    assert main([*command(stage.name), *extra, "--run-dir", str(run)]) == code
    err = capsys.readouterr().err
    for w in words:
        assert w in err, err
    assert tree(run) == before
    assert not (run / stage.name / "started.json").exists()


@pytest.fixture
def shared_dir():
    """A folder every user can read (pytest's own tmp folders are private to their owner)."""
    import shutil
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="repro-unwritable-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("stage", sorted(NO_RUN_DIR_INPUT))
def test_an_unwritable_run_directory_is_refused_up_front(stage, shared_dir):
    run = shared_dir / "run"
    fill(run)
    for p in [run, *run.rglob("*")]:  # readable for everyone, writable only by its owner
        p.chmod(0o755 if p.is_dir() else 0o644)
    before = tree(run)
    demote = None
    if os.geteuid() == 0:  # root writes anywhere: run repro as an unprivileged user instead
        def demote() -> None:
            os.setgid(65534)
            os.setuid(65534)
    else:
        for p in [run, *run.rglob("*")]:
            if p.is_dir():
                p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        proc = subprocess.run(repro_cmd(stage, "--run-dir", str(run)), capture_output=True,
                              text=True, env=env(HOME=str(shared_dir)), preexec_fn=demote,
                              cwd=shared_dir, timeout=300, check=False)
    finally:
        for p in [run, *run.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
    assert proc.returncode == 13, proc.stdout + proc.stderr
    assert f"cannot write to {run} (Permission denied)" in proc.stderr
    assert "fix: make it writable" in proc.stderr and "--run-dir DIR" in proc.stderr
    assert tree(run) == before
