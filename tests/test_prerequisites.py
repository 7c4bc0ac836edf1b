"""`repro all` checks every prerequisite of the stages it will run before the first one runs:
each missing prerequisite alone is refused with its own exit code and fix, several together
as one refusal (exit 16) naming each; nothing is written (no run directory, no lock, no
`latest` link, no cache entry)."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import pytest

from advisor_repro import pipeline, prerequisites
from advisor_repro.cli import main
from advisor_repro.config import load_config
from advisor_repro.files import hash_tree

KEY = "ADVISOR_REPRO_TEST_JUDGE_KEY"  # never set
Usage = namedtuple("Usage", "total used free")

# name -> (--set overrides, environment, exit code alone, words the message must hold)
CASES = {
    "judge key": (("judge.backend='anthropic'", f"judge.api_key_env='{KEY}'"), {}, 10,
                  (KEY, "judge, audit, audit-training")),
    "model not cached offline": (("metrics.bertscore_model='roberta-large'",),
                                 {"offline": True}, 6, ("roberta-large", "metrics")),
    "segment over its session": (("train.session_limit_action='stop'",
                                  "train.segment1.session_limit_hours=0.001"), {}, 5,
                                 ("train-1", "session limit", "session_limit_action='pause'")),
    "disk for the plan": ((), {"disk": True}, 5, ("not enough disk", "--run-dir")),
}


@pytest.fixture
def place(tmp_path, monkeypatch):
    """An empty working folder (for `runs/latest`), an empty hub cache, the hub online."""
    from huggingface_hub import constants

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(KEY, raising=False)
    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return tmp_path


def refuse(place: Path, monkeypatch, overrides, env) -> int:
    from huggingface_hub import constants

    if env.get("offline"):
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    if env.get("disk"):
        monkeypatch.setattr(prerequisites.shutil, "disk_usage",
                            lambda p: Usage(2**30, 2**30 - 2**20, 2**20))
    args = ["all", "--run-dir", str(place / "run")]
    for o in overrides:
        args += ["--set", o]
    return main(args)


def assert_nothing_written(place: Path, cache_before: dict) -> None:
    from advisor_repro.models.cache import cache_root

    assert not (place / "run").exists()
    assert not (place / "runs").exists()
    assert not any((place / "hub").iterdir())
    assert hash_tree(cache_root()) == cache_before


@pytest.fixture
def cache_before():
    from advisor_repro.models.cache import cache_root

    return hash_tree(cache_root()) if cache_root().exists() else {}


@pytest.mark.parametrize("name", list(CASES))
def test_each_missing_prerequisite_alone(name, place, monkeypatch, capsys, cache_before):
    overrides, env, code, words = CASES[name]
    assert refuse(place, monkeypatch, overrides, env) == code
    err = capsys.readouterr().err
    assert "found before any stage ran, nothing was changed" in err
    assert "fix:" in err
    for w in words:
        assert w in err, (w, err)
    assert_nothing_written(place, cache_before)


def test_all_missing_together_in_one_refusal(place, monkeypatch, capsys, cache_before):
    overrides = [o for ov, _, _, _ in CASES.values() for o in ov]
    env = {k: v for _, e, _, _ in CASES.values() for k, v in e.items()}
    assert refuse(place, monkeypatch, overrides, env) == 16
    err = capsys.readouterr().err
    assert f"{len(CASES)} prerequisites of this run are missing" in err
    for _, _, _, words in CASES.values():
        for w in words:
            assert w in err, (w, err)
    assert err.count("fix:") == len(CASES) + 1
    assert_nothing_written(place, cache_before)


def test_judge_cap_outside_the_caps_is_refused_when_the_config_loads(place, monkeypatch,
                                                                     capsys, cache_before):
    assert refuse(place, monkeypatch, ("judge.cap=300",), {}) == 2
    assert "judge.cap" in capsys.readouterr().err
    assert_nothing_written(place, cache_before)


def test_the_key_is_not_asked_for_when_judge_and_audits_are_done(tmp_path, monkeypatch):
    """Only the stages that will run are checked: with judge and both audits done (or
    imported), a run of the other stages needs no key; a stage downstream of one that will
    run, runs too."""
    stages = pipeline.stages()
    names = [s.name for s in stages]
    states = {n: "done" for n in names}
    assert prerequisites.stages_to_run(stages, states, []) == []
    states["metrics"] = "stale"
    after = [s.name for s in prerequisites.stages_to_run(stages, states, [])]
    assert after[0] == "metrics" and "verify" in after and "judge" not in after
    cfg = load_config("smoke", ["judge.backend='anthropic'", f"judge.api_key_env='{KEY}'"])
    monkeypatch.delenv(KEY, raising=False)
    to_run = prerequisites.stages_to_run(stages, states, [])
    assert prerequisites.problems(cfg, tmp_path, to_run) == []
    forced = prerequisites.stages_to_run(stages, states, ["judge"])
    assert "judge" in [s.name for s in forced]
    found = prerequisites.problems(cfg, tmp_path, forced)
    assert [stage for stage, _ in found] == ["judge, audit, audit-training"]


def test_a_set_key_passes(place, monkeypatch):
    monkeypatch.setenv(KEY, "sk-test-not-a-real-key")
    cfg = load_config("smoke", ["judge.backend='anthropic'", f"judge.api_key_env='{KEY}'"])
    assert prerequisites.problems(cfg, place / "run", pipeline.stages()) == []
