"""The rule for a run directory written by another profile or package version (issue 17):
another --profile is refused, the recorded one is continued (with --set on top of its
overrides), another version is continued and said."""

from __future__ import annotations

import argparse

import pytest

from advisor_repro import __version__
from advisor_repro.cli import main
from advisor_repro.cli.common import select
from advisor_repro.errors import ConfigError
from advisor_repro.files import hash_tree, write_json


def args(run, profile=None, *sets):
    return argparse.Namespace(profile=profile, overrides=list(sets), run_dir=str(run),
                              run_id=None, allow_unsupported_gpu=False)


def made_by(run, profile="paper", overrides=("judge.backend='replay'",), version=__version__):
    run.mkdir(parents=True, exist_ok=True)
    write_json(run / "manifest.json", {"profile": profile, "overrides": list(overrides),
                                       "version": version})


def test_another_profile_is_refused_naming_both(tmp_path, capsys):
    run = tmp_path / "run"
    made_by(run)
    before = hash_tree(run)
    assert main(["judge", "--profile", "smoke", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run} was made with profile 'paper'; this command asks for 'smoke'" in err
    assert "fix: drop --profile to continue it with 'paper'" in err
    assert "or give another --run-dir for a 'smoke' run" in err
    assert hash_tree(run) == before
    with pytest.raises(ConfigError):
        select(args(run, "smoke"))
    assert select(args(run, "paper")).profile == "paper"  # the same profile: continued


def test_set_without_profile_adds_to_the_recorded_profile_and_overrides(tmp_path):
    run = tmp_path / "run"
    made_by(run)
    sel = select(args(run, None, "metrics.bootstrap_resamples=500"))
    assert sel.profile == "paper"  # not the default profile (smoke)
    assert sel.overrides == ["judge.backend='replay'", "metrics.bootstrap_resamples=500"]
    assert sel.cfg.judge.backend == "replay" and sel.cfg.metrics.bootstrap_resamples == 500


def test_another_package_version_is_continued_and_said(tmp_path, capsys):
    run = tmp_path / "run"
    made_by(run, version="0.0.1")
    assert select(args(run)).profile == "paper"
    err = capsys.readouterr().err
    assert f"note: {run} was written by advisor-repro 0.0.1, this is {__version__}: " \
           "continued; stages whose recorded hashes still match are kept" in err
    made_by(run)
    select(args(run))
    assert capsys.readouterr().err == ""
