"""Scenario 14: a stage that cannot run changes nothing (issue 17), for every registered stage.

A run directory holds a result in every stage folder and every declared input of every stage.
Each row takes away what one stage needs (its declared inputs; for the stages that declare none,
the outside input they check first), runs that stage through `repro`, and asserts the refusal
(exit code, the message naming what is missing, a fix) and a byte-identical run directory: every
file's sha256 before and after, manifest.json included (only the lock file may appear).
The stages with no run-directory input at all (preflight, report) are refused because the run
directory cannot be written (chmod a-w; for root, which writes through permissions, the
immutable attribute, `chattr +i`).
"""

from __future__ import annotations

import re
import shutil

import pytest

from advisor_repro import pipeline
from advisor_repro.cli import main

from .conftest import command, fill, read_only, tree

STAGES = pipeline.stages()
NO_RUN_DIR_INPUT = {"preflight", "report"}  # their inputs are the device / optional files


def remove(path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


# stage -> (extra arguments, expected exit code, words of the message) for the stages that
# declare no input files: what they check first instead
OUTSIDE = {
    "data": (["--set", "data.source='/nonexistent/dataset'"], 3,
             ["data.source '/nonexistent/dataset'", "fix: point --set data.source=PATH"]),
    # audit-data audits the dataset as its source holds it (as the author's script does)
    "audit-data": (["--set", "data.source='/nonexistent/dataset'"], 3,
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


@pytest.mark.parametrize("stage", sorted(NO_RUN_DIR_INPUT))
def test_an_unwritable_run_directory_is_refused_up_front(stage, tmp_path, capsys):
    run = tmp_path / "run"
    fill(run)
    (run / ".lock").write_text("")
    before = tree(run)
    with read_only(run):
        assert main([stage, "--run-dir", str(run)]) == 13
    err = capsys.readouterr().err
    assert re.search(rf"cannot write to {re.escape(str(run))} \((Permission denied|"
                     r"Operation not permitted)\)", err), err
    assert "fix: make it writable" in err and "--run-dir DIR" in err
    assert tree(run) == before
