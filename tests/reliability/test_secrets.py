"""Scenario 10: HF_TOKEN, HUGGING_FACE_HUB_TOKEN and the judges' API keys are in the
environment of every `repro` these tests start (recognisable fake values, conftest.SECRETS);
none of them appears in the manifest, the logs, the reports or the caches. The whole run
directory is read as bytes, binary files included. The judge API runs, where the key is
actually sent, check the same in tests/reliability/test_judge_api.py; the killed-and-resumed
run in test_kill.py."""

from __future__ import annotations

from advisor_repro.files import read_json
from advisor_repro.models.hub import cache_root

from .conftest import SECRETS, assert_no_secrets


def test_no_secret_in_the_run_directory_its_log_or_the_model_cache(reference_run):
    n = assert_no_secrets(reference_run, reference_run.parent / "repro.log")
    assert n > 50  # every stage's outputs, records, checkpoints, caches, figures
    assert any(reference_run.rglob("*.safetensors")) and any(reference_run.rglob("*.png"))
    assert (reference_run / "judge/cache").is_dir() and (reference_run / "report").is_dir()
    assert_no_secrets(cache_root())  # the converted smoke model and its provenance
    manifest = read_json(reference_run / "manifest.json")
    assert not set(SECRETS) & set(manifest.get("environment", {}))
