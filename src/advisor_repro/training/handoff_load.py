"""The handoff bundle's load check, the way segment 2 will load it, in a fresh interpreter
(`verify_in_fresh_process`, through advisor_repro.fresh), so nothing in the `repro` process's
memory can make it pass: the child calls `load_check`, which runs the bundle's gate
(handoff.bundle_checks, with the expectation built from the config), loads the base model, puts
the adapter on it with `PeftModel.from_pretrained(..., is_trainable=True)`, counts the
trainable parameters and compares every loaded LoRA tensor with the file. The base loads as
stored: the smoke model in fp32 on the CPU; a pre-quantized base (the paper's Unsloth NF4) as
its config says, on the GPU, as segment 2 loads it.

Run by hand: python -m advisor_repro.training.handoff_load BUNDLE BASE_FOLDER EXPECTED_JSON OUT_JSON
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from advisor_repro.errors import HandoffError
from advisor_repro.files import read_json, sha256_file, write_json
from advisor_repro.fresh import run_module
from advisor_repro.training.handoff import (
    HANDOFF_FILE,
    RERUN_FIX,
    Check,
    Expected,
    bundle_checks,
)

MODULE = "advisor_repro.training.handoff_load"  # run with -m as the fresh process
LOAD_TIMEOUT_S = 1800  # a 7B pre-quantized base on a slow disk; the smoke model takes seconds


class BaseLoad(TypedDict):
    dtype: str  # "nf4" for a pre-quantized base, else torch's name ("float32")
    device: str
    quantized: bool


class Verified(TypedDict):
    """handoff/verified.json: the load check's record, as the fresh process wrote it."""

    ok: bool
    checks: list[Check]
    trainable_params_loaded: int | None
    files_hashed: list[str]
    handoff_json_sha256: str | None
    base_folder: str
    base_load: NotRequired[BaseLoad]  # absent when a check failed before loading
    seconds: NotRequired[float]  # added by the parent: the fresh process's wall-clock


def verify_in_fresh_process(bundle: Path, base_dir: Path, expected_json: Path) -> Verified:
    """Run `load_check` in a new interpreter; return its verified.json record."""
    out = bundle.parent / "verified.tmp.json"
    out.unlink(missing_ok=True)
    t0 = time.monotonic()
    try:
        # dies with `repro`: a SIGTERM'd repro must not leave it writing its verdict into
        # the folder the resumed handoff is rebuilding
        proc = run_module(MODULE, [str(bundle), str(base_dir), str(expected_json), str(out)],
                          timeout_s=LOAD_TIMEOUT_S, capture=True)
    except subprocess.TimeoutExpired as exc:
        raise HandoffError(
            f"loading the handoff bundle took over {LOAD_TIMEOUT_S} s in a fresh process",
            "check the disk and the base model folder, then rerun `repro handoff`",
        ) from exc
    if not out.is_file():
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise HandoffError(
            f"the handoff bundle did not load in a fresh process (exit {proc.returncode}): {tail}",
            f"check that the base model in {base_dir} loads (`repro fetch` for hub models), "
            f"then {RERUN_FIX}",
        )
    verified: Verified = read_json(out)
    out.unlink()
    verified["seconds"] = round(time.monotonic() - t0, 2)
    return verified


# ---- the fresh process ----------------------------------------------------------------------
def load_check(bundle: Path, base_dir: Path, expected: Expected) -> Verified:
    """What segment 2 does before training: the gate, then PeftModel.from_pretrained."""
    handoff, checks = bundle_checks(bundle, expected)
    record: Verified = {
        "ok": False,
        "checks": checks,
        "trainable_params_loaded": None,
        "files_hashed": sorted(handoff["files"]) if handoff else [],
        "handoff_json_sha256": _sha_or_none(bundle / HANDOFF_FILE),
        "base_folder": str(base_dir),
    }
    if handoff is None or not checks[-1]["ok"]:
        return record
    model, record["base_load"] = _load_base(base_dir)
    from peft import PeftModel

    model = PeftModel.from_pretrained(model, bundle, is_trainable=True)
    loaded = sum(p.numel() for p in model.parameters() if p.requires_grad)
    record["trainable_params_loaded"] = loaded
    checks.append(_loaded_count_check(loaded, handoff["trainable_params"]))
    if checks[-1]["ok"]:
        checks.append(_weights_check(model, bundle))
    record["ok"] = all(c["ok"] for c in checks)
    return record


def _load_base(base_dir: Path) -> tuple[Any, BaseLoad]:
    from transformers import AutoModelForCausalLM

    if "quantization_config" in read_json(base_dir / "config.json"):
        # A pre-quantized base (bitsandbytes NF4) loads as its config says, on the GPU.
        model = AutoModelForCausalLM.from_pretrained(
            base_dir, device_map="auto", use_safetensors=True
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto", use_safetensors=True)
    device = str(next(model.parameters()).device)
    quantized = getattr(model, "is_loaded_in_4bit", False)
    dtype = "nf4" if quantized else str(model.dtype).removeprefix("torch.")
    return model, {"dtype": dtype, "device": device, "quantized": bool(quantized)}


def _loaded_count_check(loaded: int, recorded: int) -> Check:
    if loaded == recorded:
        return {"name": "trainable parameters after loading", "ok": True, "detail": f"{loaded:,}"}
    return {
        "name": "trainable parameters after loading",
        "ok": False,
        "detail": f"PeftModel.from_pretrained gives {loaded:,} trainable parameters, "
        f"handoff.json records {recorded:,}",
        "fix": "the adapter does not fit this base model's architecture: check the profile's "
        "model.train_base, then rerun `repro train --segment 1` and `repro handoff`",
    }


def _weights_check(model: Any, bundle: Path) -> Check:
    """Every LoRA tensor in the model equals the file's: the adapter loaded, not a fresh init."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    stored = load_file(str(bundle / "adapter_model.safetensors"))
    live = get_peft_model_state_dict(model)
    name = "adapter weights loaded"
    if set(live) != set(stored):
        only = sorted(set(live) ^ set(stored))
        return {
            "name": name,
            "ok": False,
            "detail": f"loaded and stored tensor names differ ({len(only)}: {only[0]} ...)",
            "fix": RERUN_FIX,
        }
    differ = [
        k for k in stored if not torch.equal(live[k].detach().cpu().to(stored[k].dtype), stored[k])
    ]
    if differ:
        return {
            "name": name,
            "ok": False,
            "detail": f"{len(differ)} of {len(stored)} LoRA tensors differ from the file "
            f"after loading (first: {differ[0]})",
            "fix": RERUN_FIX,
        }
    return {"name": name, "ok": True, "detail": f"{len(stored)} tensors equal the file"}


def _sha_or_none(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


def main(argv: list[str]) -> int:
    bundle, base_dir, expected_json, out = (Path(a) for a in argv)
    record = load_check(bundle, base_dir, json.loads(expected_json.read_text(encoding="utf-8")))
    write_json(out, record)
    return 0 if record["ok"] else HandoffError.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
