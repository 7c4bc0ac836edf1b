"""The handoff bundle: made from a real PEFT adapter on the smoke base, loaded back with
PeftModel.from_pretrained, and refused (exit code 9, the failed check named with both values)
when a file, the base model, the LoRA config, the count, the data or the state is wrong."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from advisor_repro import __version__
from advisor_repro.config import load_config
from advisor_repro.errors import HandoffError
from advisor_repro.files import read_json, sha256_file, write_json
from advisor_repro.training.handoff import (
    bundle_checks,
    expected_from_config,
    load_verified_bundle,
    lora_mismatch,
    make_bundle,
    safetensors_param_count,
)

SMOKE_DATA_FINGERPRINT = "d" * 64  # what the conftest's summary records
SMOKE_TRAINABLE = 4_884_480  # SmolLM2-135M, r 16 on 7 modules x 30 layers
SMOKE_TARGETS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
HANDOFF_KEYS = {
    "format",
    "base_model",
    "base_revision",
    "lora",
    "trainable_params",
    "optimizer_steps",
    "epochs_done",
    "last_loss",
    "data_fingerprint",
    "package_version",
    "created",
    "files",
    "left_out",
    "note",
}
BUNDLE_FILES = {
    "adapter_config.json",
    "adapter_model.safetensors",
    "chat_template.jinja",
    "tokenizer.json",
    "tokenizer_config.json",
}
CHECKS = [
    "handoff.json",
    "no trainer state",
    "file hashes",
    "handoff.json agrees with the adapter",
    "base model",
    "LoRA config",
    "trainable parameters",
    "data fingerprint",
]


# ---- pure parts ----------------------------------------------------------------------------------
def test_expected_from_config_uses_the_runs_own_profile():
    exp = expected_from_config(load_config("smoke"), "SmolLM2-135M-Instruct", "gguf-abc", "f" * 64)
    assert exp == {
        "base_model": "SmolLM2-135M-Instruct",
        "base_revision": "gguf-abc",
        "lora": {
            "r": 16,
            "alpha": 32,
            "dropout": 0.0,
            "bias": "none",
            "target_modules": SMOKE_TARGETS,
        },
        "trainable_params": SMOKE_TRAINABLE,
        "data_fingerprint": "f" * 64,
    }
    paper = expected_from_config(load_config("paper"), "unsloth/m", None)
    assert paper["trainable_params"] == 41_943_040 and paper["base_revision"] is None
    unchecked = load_config("smoke", ["train.lora.expected_trainable=0"])
    assert expected_from_config(unchecked, "m", "")["trainable_params"] is None


def test_lora_targets_compare_as_a_set_and_numbers_by_value():
    a = {"r": 16, "alpha": 32, "dropout": 0.0, "bias": "none", "target_modules": ["q", "k"]}
    assert lora_mismatch(a, {**a, "alpha": 32.0, "target_modules": ["k", "q"]}) is None
    assert lora_mismatch(a, {**a, "r": 8}) == ("r", 16, 8)
    assert lora_mismatch(a, {**a, "target_modules": ["q"]}) == ("target_modules", ["q", "k"], ["q"])


# ---- a good bundle -------------------------------------------------------------------------------
@pytest.fixture
def bundle(smoke_adapter, tmp_path) -> Path:
    adapter, summary = smoke_adapter
    make_bundle(adapter, summary, tmp_path / "bundle", created="2026-01-02T03:04:05Z")
    return tmp_path / "bundle"


@pytest.fixture
def expected(smoke_adapter) -> dict:
    _, summary = smoke_adapter
    return expected_from_config(
        load_config("smoke"),
        "SmolLM2-135M-Instruct",
        summary["base_revision"],
        SMOKE_DATA_FINGERPRINT,
    )


def test_adapter_file_holds_the_smoke_trainable_count(smoke_adapter):
    adapter, summary = smoke_adapter
    assert summary["trainable_params"] == SMOKE_TRAINABLE
    assert safetensors_param_count(adapter / "adapter_model.safetensors") == SMOKE_TRAINABLE


def test_handoff_json_records_the_contract(bundle, smoke_adapter):
    adapter, summary = smoke_adapter
    handoff = read_json(bundle / "handoff.json")
    assert set(handoff) == HANDOFF_KEYS
    assert handoff["format"] == "advisor-repro-handoff/1"
    assert handoff["base_model"] == "SmolLM2-135M-Instruct"
    assert handoff["base_revision"] == summary["base_revision"]
    assert handoff["base_revision"].startswith("gguf-") and len(handoff["base_revision"]) == 17
    assert handoff["lora"] == {
        "r": 16,
        "alpha": 32,
        "dropout": 0.0,
        "bias": "none",
        "target_modules": SMOKE_TARGETS,
    }
    assert handoff["trainable_params"] == SMOKE_TRAINABLE
    assert (handoff["optimizer_steps"], handoff["epochs_done"]) == (8, 0.64)
    assert handoff["last_loss"] == 2.3456
    assert handoff["data_fingerprint"] == SMOKE_DATA_FINGERPRINT
    assert handoff["package_version"] == __version__
    assert handoff["created"] == "2026-01-02T03:04:05Z"
    # every file but handoff.json, hashed; PEFT's model card is left out, and said so
    assert set(handoff["files"]) == BUNDLE_FILES
    assert {p.name for p in bundle.iterdir()} == BUNDLE_FILES | {"handoff.json"}
    for name, sha in handoff["files"].items():
        assert sha == sha256_file(adapter / name) == sha256_file(bundle / name)
    assert handoff["left_out"] == ["README.md"]
    assert not list(bundle.parent.glob(".bundle.*"))  # no temp folder left behind


def test_good_bundle_verifies_and_loads_with_peft(bundle, expected):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from advisor_repro.models.hub import base_model

    handoff, checks = bundle_checks(bundle, expected)
    assert [c["name"] for c in checks] == CHECKS and all(c["ok"] for c in checks)
    assert checks[2]["detail"] == "5 files match their sha256"
    assert load_verified_bundle(bundle, expected) == handoff == read_json(bundle / "handoff.json")

    folder, _ = base_model(load_config("smoke").model)
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, bundle, is_trainable=True)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == SMOKE_TRAINABLE
    stored = load_file(str(bundle / "adapter_model.safetensors"))
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
    live = model.base_model.model.model.layers[0].self_attn.q_proj.lora_B["default"].weight
    assert stored[key].abs().sum() > 0  # trained-like, not PEFT's zero init
    assert torch.equal(live.detach(), stored[key])
    tok = AutoTokenizer.from_pretrained(bundle)
    assert tok.eos_token == "<|im_end|>"


# ---- refusals: each names the check and both values, exit code 9 ---------------------------------
def refused(bundle: Path, expected: dict, check: str) -> str:
    with pytest.raises(HandoffError) as err:
        load_verified_bundle(bundle, expected)
    assert err.value.exit_code == 9
    _, checks = bundle_checks(bundle, expected)
    assert checks[-1]["name"] == check and not checks[-1]["ok"]
    assert all(c["ok"] for c in checks[:-1])
    return err.value.message


@pytest.mark.parametrize("name", ["adapter_model.safetensors", "tokenizer.json"])
def test_missing_file_is_refused(bundle, expected, name):
    (bundle / name).unlink()
    msg = refused(bundle, expected, "file hashes")
    assert f"handoff bundle file {name} is missing" in msg
    assert "fix: rerun `repro handoff`" in msg


def test_flipped_byte_in_the_weights_is_refused(bundle, expected):
    path = bundle / "adapter_model.safetensors"
    recorded = read_json(bundle / "handoff.json")["files"][path.name]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    msg = refused(bundle, expected, "file hashes")
    assert (
        f"handoff bundle file adapter_model.safetensors has sha256 {sha256_file(path)[:12]}…, "
        f"handoff.json records {recorded[:12]}… (the file was changed)"
    ) in msg


def test_edited_adapter_config_is_a_hash_mismatch(bundle, expected):
    path = bundle / "adapter_config.json"
    cfg = read_json(path)
    cfg["r"] = 8
    path.write_text(json.dumps(cfg))
    msg = refused(bundle, expected, "file hashes")
    assert "handoff bundle file adapter_config.json has sha256" in msg


def test_extra_file_is_refused(bundle, expected):
    (bundle / "notes.txt").write_text("hello")
    msg = refused(bundle, expected, "file hashes")
    assert "handoff bundle holds files handoff.json does not list: notes.txt" in msg


def test_edited_handoff_json_count_is_caught_against_the_weights(bundle, expected):
    path = bundle / "handoff.json"
    write_json(path, {**read_json(path), "trainable_params": 41_943_040})
    msg = refused(bundle, {**expected, "trainable_params": 41_943_040}, CHECKS[3])
    assert "handoff.json says 41,943,040 trainable parameters, adapter_model.safetensors " in msg
    assert "holds 4,884,480 (handoff.json was edited)" in msg


def test_wrong_base_model_is_refused(bundle, expected):
    other = {**expected, "base_model": "HuggingFaceTB/SmolLM2-360M-Instruct"}
    msg = refused(bundle, other, "base model")
    assert msg.startswith(
        "handoff bundle base model is SmolLM2-135M-Instruct, "
        "this run expects HuggingFaceTB/SmolLM2-360M-Instruct\n  fix: use the profile"
    )
    assert "repro train --segment 1" in msg


def test_wrong_base_revision_is_refused(bundle, expected):
    have = read_json(bundle / "handoff.json")["base_revision"]
    msg = refused(bundle, {**expected, "base_revision": "gguf-000000000000"}, "base model")
    assert f"handoff bundle base revision is {have}, this run expects gguf-000000000000" in msg


def test_wrong_rank_is_refused(smoke_adapter_r8, expected, tmp_path):
    adapter, summary = smoke_adapter_r8
    handoff = make_bundle(adapter, summary, tmp_path / "r8")
    assert handoff["trainable_params"] == SMOKE_TRAINABLE // 2 == 2_442_240
    msg = refused(tmp_path / "r8", expected, "LoRA config")
    assert "handoff bundle LoRA rank is 8, this run expects 16" in msg


def test_wrong_alpha_and_targets_are_refused(bundle, expected):
    lora = expected["lora"]
    msg = refused(bundle, {**expected, "lora": {**lora, "alpha": 16}}, "LoRA config")
    assert "handoff bundle LoRA alpha is 32, this run expects 16" in msg
    fewer = {**lora, "target_modules": ["q_proj", "v_proj"]}
    msg = refused(bundle, {**expected, "lora": fewer}, "LoRA config")
    assert "this run expects q_proj, v_proj (missing: -; extra: down_proj, gate_proj" in msg


def test_wrong_parameter_count_is_refused(bundle, smoke_adapter):
    cfg = load_config("smoke", ["train.lora.expected_trainable=41943040"])
    exp = expected_from_config(cfg, "SmolLM2-135M-Instruct", smoke_adapter[1]["base_revision"])
    msg = refused(bundle, exp, "trainable parameters")
    assert "handoff bundle has 4,884,480 trainable parameters, this run expects 41,943,040" in msg


def test_other_data_is_refused(bundle, expected):
    msg = refused(bundle, {**expected, "data_fingerprint": "e" * 64}, "data fingerprint")
    assert "trained on data dddddddddddd…, this run's data/train_text.jsonl is eeeeeeeeeeee…" in msg


def test_optimizer_state_in_a_bundle_is_refused(bundle, expected):
    (bundle / "optimizer.pt").write_bytes(b"\x80\x04state")
    (bundle / "rng_state.pth").write_bytes(b"\x80\x04rng")
    msg = refused(bundle, expected, "no trainer state")
    assert "optimizer/trainer state (optimizer.pt, rng_state.pth)" in msg
    assert "adapter-only by design" in msg


@pytest.mark.parametrize("state", ["optimizer.pt", "scheduler.pt", "trainer_state.json"])
def test_no_bundle_is_made_from_a_folder_with_optimizer_state(smoke_adapter, tmp_path, state):
    adapter, summary = smoke_adapter
    checkpoint = tmp_path / "checkpoint-8"
    shutil.copytree(adapter, checkpoint)
    (checkpoint / state).write_bytes(b"state")
    with pytest.raises(
        HandoffError, match=re.escape(f"holds optimizer/trainer state ({state})")
    ) as err:
        make_bundle(checkpoint, summary, tmp_path / "bundle")
    assert err.value.exit_code == 9
    assert not (tmp_path / "bundle").exists()


def test_summary_that_disagrees_with_the_adapter_is_refused(smoke_adapter, tmp_path):
    adapter, summary = smoke_adapter
    bad = {**summary, "lora": {**summary["lora"], "r": 8}}
    with pytest.raises(
        HandoffError, match=re.escape("says LoRA rank 8, but adapter_config.json has 16")
    ):
        make_bundle(adapter, bad, tmp_path / "bundle")
    with pytest.raises(HandoffError, match="says 4,884,481 trainable parameters, but adapter"):
        make_bundle(adapter, {**summary, "trainable_params": 4_884_481}, tmp_path / "bundle")
    short = {k: v for k, v in summary.items() if k not in ("last_loss", "data_fingerprint")}
    with pytest.raises(
        HandoffError, match=re.escape("summary.json lacks last_loss, data_fingerprint")
    ):
        make_bundle(adapter, short, tmp_path / "bundle")


def test_pickle_or_unreadable_weights_and_missing_tokenizer_are_refused(smoke_adapter, tmp_path):
    adapter, summary = smoke_adapter
    pickled = tmp_path / "pickled"
    shutil.copytree(adapter, pickled)
    (pickled / "adapter_model.safetensors").rename(pickled / "adapter_model.bin")
    with pytest.raises(HandoffError, match=re.escape("adapter_model.bin (a pickle)")):
        make_bundle(pickled, summary, tmp_path / "bundle")
    cut = tmp_path / "cut"
    shutil.copytree(adapter, cut)
    (cut / "adapter_model.safetensors").write_bytes(b"\xff" * 8 + b"{}")
    with pytest.raises(HandoffError, match="has no valid safetensors header"):
        make_bundle(cut, summary, tmp_path / "bundle")
    bare = tmp_path / "bare"
    shutil.copytree(adapter, bare)
    (bare / "tokenizer_config.json").unlink()
    with pytest.raises(HandoffError, match=re.escape("lacks tokenizer_config.json")):
        make_bundle(bare, summary, tmp_path / "bundle")


def test_missing_handoff_json_is_refused(bundle, expected):
    (bundle / "handoff.json").unlink()
    msg = refused(bundle, expected, "handoff.json")
    assert "handoff.json is missing or not valid JSON" in msg
