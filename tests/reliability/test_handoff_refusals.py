"""Scenario 3: segment 2 refuses a handoff bundle that is not the one segment 1 made for this
run, with the reason and exit 9, through `repro train-2` on a copy of the finished run. The
refusal comes from the training process's own check (`load_verified_bundle`), before any
training; finished stages keep their records.

The check-by-check unit tests are tests/test_handoff.py; this is the same refusal end to end.
"""

from __future__ import annotations

import pytest

from advisor_repro.files import read_json

from .conftest import PROFILE, records, run_repro

pytestmark = pytest.mark.slow


def _remove(name):
    return lambda run: (run / "handoff/bundle" / name).unlink()


def _flip(name):
    def edit(run):
        path = run / "handoff/bundle" / name
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    return edit


CASES = {
    "missing-file": (_remove("tokenizer.json"), (),
                     "handoff bundle file tokenizer.json is missing"),
    "flipped-byte": (_flip("adapter_model.safetensors"), (),
                     "handoff bundle file adapter_model.safetensors has sha256"),
    "wrong-base-model": (None, ("model.train_base='HuggingFaceTB/SmolLM2-360M-Instruct'",),
                         "handoff bundle base model is SmolLM2-135M-Instruct, this run "
                         "expects HuggingFaceTB/SmolLM2-360M-Instruct"),
    "wrong-lora-rank": (None, ("train.lora.r=8",),
                        "handoff bundle LoRA rank is 16, this run expects 8"),
    "wrong-parameter-count": (None, ("train.lora.expected_trainable=4884481",),
                              "handoff bundle has 4,884,480 trainable parameters, this run "
                              "expects 4,884,481"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_segment2_refuses_a_bundle_that_is_not_this_runs(case, run_copy, tmp_path):
    edit, sets, words = CASES[case]
    if edit is not None:
        edit(run_copy)
    log, before = tmp_path / "repro.log", records(run_copy)
    extra = [a for s in sets for a in ("--set", s)]
    assert run_repro(log, "train-2", *PROFILE, *extra, "--run-dir", str(run_copy)) == 9
    err = log.read_text()
    refusal = err[err.index("error: "):]
    assert words in refusal and "fix:" in refusal, refusal
    assert not (run_copy / "train-2/done.json").exists()
    assert read_json(run_copy / "train-2/failed.json")["error"] in refusal
    assert not (run_copy / "train-2/steps.jsonl").exists()  # refused before any step
    for stage in ("preflight", "data", "train-1", "handoff"):
        assert records(run_copy)[stage] == before[stage]
