"""Scenario 19: a cache the stage would write into cannot be written (issue 17).

The stages that load a model or a dataset declare the caches outside the run directory that
loading it would write (`Stage.caches`): the advisor-repro cache (ADVISOR_REPRO_CACHE) while the
smoke model is still to be converted, the hub cache (HF_HOME) for a download while online. Each
is probed before the stage's folder is touched; an unwritable one is refused with exit 13, the
path and the fix, and the run directory is byte-identical (scenario 14's filled run directory
and its sha256 of every file). A read-only cache that already holds what the stage reads is
not refused: a converted smoke model, a warm hub cache with HF_HUB_OFFLINE=1. Unwritable is
chmod a-w, or for root the immutable attribute (conftest.read_only).
"""

from __future__ import annotations

import re

import pytest

from advisor_repro import pipeline
from advisor_repro.cli import main
from advisor_repro.config import load_config
from advisor_repro.models import hub

from .conftest import command, fill, needs_smoke_model, read_only, run_repro, tree

# the stages that load the smoke model (train, handoff, generate, the local judge of the
# judge and audit stages): each converts it into the cache on first use
SMOKE_MODEL_READERS = ["train-1", "handoff", "train-2", "control", "generate", "judge", "audit",
                       "audit-training"]


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    needs_smoke_model()
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("ADVISOR_REPRO_CACHE", str(cache))
    return cache


def test_the_stages_that_load_the_smoke_model_declare_its_cache(empty_cache):
    cfg = load_config("smoke")
    declared = [s.name for s in pipeline.stages() if s.caches and s.caches(cfg)]
    assert declared == SMOKE_MODEL_READERS
    for name in declared:
        assert pipeline.get_stage(name).caches(cfg) == {"ADVISOR_REPRO_CACHE":
                                                        empty_cache / "models"}


@pytest.mark.parametrize("stage", SMOKE_MODEL_READERS)
def test_an_unwritable_cache_is_refused_before_the_stage_touches_anything(stage, empty_cache,
                                                                          tmp_path, capsys):
    run = tmp_path / "run"
    fill(run)
    before = tree(run)
    with read_only(empty_cache):
        assert main([*command(stage), "--run-dir", str(run)]) == 13
    err = capsys.readouterr().err
    assert re.search(
        rf"stage '{stage}' would write into the cache at {re.escape(str(empty_cache))}/models "
        rf"\(its nearest existing folder {re.escape(str(empty_cache))}\), which cannot be "
        r"written \((Permission denied|Operation not permitted)\); nothing was changed", err), err
    assert (f"fix: make it writable (e.g. `chmod u+w {empty_cache}`, or remount it read-write), "
            "or point ADVISOR_REPRO_CACHE at a writable folder") in err
    assert tree(run) == before
    assert not any(empty_cache.iterdir())


def test_a_read_only_cache_holding_the_converted_model_is_not_refused(tmp_path, monkeypatch):
    """Nothing would be written into it: a read-only cache is only read."""
    needs_smoke_model()
    converted = hub.smoke_model_dir(hub.cache_root())  # the shared cache: converted once
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    (cache / "models" / converted.name).symlink_to(converted)
    monkeypatch.setenv("ADVISOR_REPRO_CACHE", str(cache))
    run = tmp_path / "run"
    fill(run)
    cfg = load_config("smoke")
    with read_only(cache / "models"), read_only(cache):
        for name in SMOKE_MODEL_READERS:
            assert pipeline.get_stage(name).caches(cfg) == {}, name
        pipeline.precheck(pipeline.get_stage("train-1"), cfg, run)  # no UnwritableError


def test_an_unwritable_hub_cache_is_refused_online_and_only_read_offline(tmp_path):
    """`repro data` from a hub dataset: online a download may write the hub cache (refused,
    exit 13, naming HF_HOME and HF_HUB_OFFLINE); offline it is only read, so the refusal
    is the dataset missing from it (exit 6), not the cache's permissions."""
    hf, run, log = tmp_path / "hf", tmp_path / "run", tmp_path / "repro.log"
    hf.mkdir()
    fill(run)
    before = tree(run)
    args = ("data", "--set", "data.source='hf:advisor-repro-test/none'", "--run-dir", str(run))
    paths = {"HF_HOME": str(hf), "HF_HUB_CACHE": str(hf / "hub")}
    with read_only(hf):
        assert run_repro(log, *args, HF_HUB_OFFLINE="0", **paths) == 13
        out = log.read_text()
        assert (f"stage 'data' would write into the cache at {hf}/hub (its nearest existing "
                f"folder {hf}), which cannot be written") in out, out[-2000:]
        assert ("or point HF_HOME at a writable folder; or, if the hub cache already holds "
                "everything this stage reads, set HF_HUB_OFFLINE=1 (then it is only read)") in out
        assert tree(run) == before
        assert run_repro(log, *args, HF_HUB_OFFLINE="1", **paths) == 6
    assert "dataset advisor-repro-test/none (revision main) is not in the local cache" in \
        log.read_text()
