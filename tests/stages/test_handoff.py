"""Stage `handoff` through the pipeline, on a run directory whose data stage really ran and
whose train-1/ holds a real PEFT adapter (the conftest's), as segment 1 leaves it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from advisor_repro import pipeline
from advisor_repro.config import load_config
from advisor_repro.errors import HandoffError, StageInputError
from advisor_repro.files import read_json, sha256_file, write_json
from advisor_repro.stages import data, handoff
from advisor_repro.training.handoff import expected_from_config, load_verified_bundle

SMOKE_TRAINABLE = 4_884_480
QUIET = {"log": lambda m: None}


@pytest.fixture(scope="module")
def data_run(tmp_path_factory) -> Path:
    """A run directory where the real data stage has run (smoke profile)."""
    run_dir = tmp_path_factory.mktemp("run")
    pipeline.run_stage(data.STAGE, load_config("smoke"), run_dir, **QUIET)
    return run_dir


def segment1_run(data_run: Path, dest: Path, adapter: Path, summary: dict) -> Path:
    """Copy of `data_run` with train-1/adapter and a summary tied to its train text."""
    shutil.copytree(data_run, dest)
    shutil.copytree(adapter, dest / "train-1" / "adapter")
    fingerprint = sha256_file(dest / "data" / "train_text.jsonl")
    write_json(dest / "train-1" / "summary.json", {**summary, "data_fingerprint": fingerprint})
    return dest


def test_stage_makes_and_verifies_the_bundle_then_skips(smoke_adapter, data_run, tmp_path):
    run_dir = segment1_run(data_run, tmp_path / "run", *smoke_adapter)
    cfg = load_config("smoke")
    what, result = pipeline.run_stage(handoff.STAGE, cfg, run_dir, **QUIET)
    assert what == "ran"
    assert result.figures == {
        "trainable": SMOKE_TRAINABLE,
        "steps": 8,
        "files": 5,
        "verified": True,
    }
    assert result.warnings == []  # PEFT's README.md is left out without a warning
    out = run_dir / "handoff"
    verified = read_json(out / "verified.json")
    assert verified["ok"] is True
    assert verified["trainable_params_loaded"] == SMOKE_TRAINABLE
    assert [c["name"] for c in verified["checks"]] == [
        "handoff.json",
        "no trainer state",
        "file hashes",
        "handoff.json agrees with the adapter",
        "base model",
        "LoRA config",
        "trainable parameters",
        "data fingerprint",
        "trainable parameters after loading",
        "adapter weights loaded",
    ]
    assert all(c["ok"] for c in verified["checks"])
    # 7 modules x 30 layers x (lora_A + lora_B)
    assert verified["checks"][-1]["detail"] == "420 tensors equal the file"
    assert verified["base_load"] == {"dtype": "float32", "device": "cpu", "quantized": False}
    assert verified["files_hashed"] == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "chat_template.jinja",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert verified["handoff_json_sha256"] == sha256_file(out / "bundle" / "handoff.json")
    record = read_json(out / "done.json")
    assert {"bundle/handoff.json", "verified.json", "expected.json"} <= set(record["outputs"])
    assert set(record["inputs"]["files"]) == {
        "train-1/adapter",
        "train-1/summary.json",
        "data/train_text.jsonl",
    }

    # segment 2's gate, with the expectation built from its own config
    revision = read_json(out / "bundle" / "handoff.json")["base_revision"]
    expected = expected_from_config(cfg, cfg.model.train_base, revision)
    assert load_verified_bundle(out / "bundle", expected)["trainable_params"] == SMOKE_TRAINABLE

    assert pipeline.run_stage(handoff.STAGE, cfg, run_dir, **QUIET)[0] == "skipped"
    (run_dir / "train-1" / "adapter" / "README.md").write_text("retrained")
    state = pipeline.stage_state(handoff.STAGE, cfg, run_dir)
    assert (state.state, state.reason) == ("stale", "changed: train-1/adapter")


def test_stage_refuses_a_bundle_for_another_base(smoke_adapter, data_run, tmp_path):
    adapter, summary = smoke_adapter
    other = {**summary, "base_model": "HuggingFaceTB/SmolLM2-360M-Instruct"}
    run_dir = segment1_run(data_run, tmp_path / "run", adapter, other)
    cfg = load_config("smoke")
    with pytest.raises(HandoffError) as err:
        pipeline.run_stage(handoff.STAGE, cfg, run_dir, **QUIET)
    assert err.value.exit_code == 9
    assert err.value.problem == (
        "handoff bundle base model is HuggingFaceTB/SmolLM2-360M-Instruct, "
        "this run expects SmolLM2-135M-Instruct"
    )
    verified = read_json(run_dir / "handoff" / "verified.json")
    assert verified["ok"] is False and verified["trainable_params_loaded"] is None
    assert verified["checks"][-1]["name"] == "base model"
    assert pipeline.stage_state(handoff.STAGE, cfg, run_dir).state == "failed"


def test_stage_refuses_a_checkpoint_folder(smoke_adapter, data_run, tmp_path):
    run_dir = segment1_run(data_run, tmp_path / "run", *smoke_adapter)
    (run_dir / "train-1" / "adapter" / "optimizer.pt").write_bytes(b"state")
    with pytest.raises(
        HandoffError, match=re.escape("holds optimizer/trainer state (optimizer.pt)")
    ):
        pipeline.run_stage(handoff.STAGE, load_config("smoke"), run_dir, **QUIET)
    assert not (run_dir / "handoff" / "bundle").exists()


def test_stage_without_segment_1_names_the_stage_to_run(data_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(data_run, run_dir)
    with pytest.raises(StageInputError, match="needs train-1/adapter") as err:
        pipeline.run_stage(handoff.STAGE, load_config("smoke"), run_dir, **QUIET)
    assert err.value.exit_code == 7
