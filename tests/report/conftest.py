"""Run directories for the report tests: the paper-shaped one of tests/stages/conftest.py, the
smoke replay (the reliability suite's shrunk `repro all`, run once per session), a
rehearsal-shaped copy of it, and the import of the author's released files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from advisor_repro.config import load_config
from advisor_repro.files import read_json, read_jsonl, write_json, write_jsonl
from advisor_repro.manifest import write_manifest
from stages.conftest import PAPER_DRAW, write_paper_run

RELEASED = Path(__file__).parent / "released"
H100 = "NVIDIA H100 80GB HBM3"
# the rehearsal profile at the smoke replay's step counts, so that its own checks hold
REHEARSAL_SETS = ["train.segment1.max_steps=6", "train.segment2.max_steps=2",
                  "train.control.max_steps=2"]  # fmt: skip


@pytest.fixture
def paper_run(tmp_path):
    return write_paper_run(tmp_path / "paper-run")


def rehearsal_shaped(smoke: Path, run: Path) -> Path:
    """The smoke replay's files as the rehearsal profile leaves them on an H100: the paper's
    data sizes and evaluation draw, the 7B LoRA's parameter count and batch shapes, CUDA memory
    peaks, fp16 training (preflight proposed bf16), 200 answers. Every number a rehearsal
    check reads is set; the curves and texts stay the smoke model's."""
    shutil.copytree(smoke, run, symlinks=True,
                    ignore=shutil.ignore_patterns("checkpoints", "bundle", ".lock", "verify",
                                                  "report"))  # fmt: skip
    cfg = load_config("rehearsal", REHEARSAL_SETS)
    write_manifest(run, cfg, "rehearsal", REHEARSAL_SETS, "repro all --profile rehearsal")
    fp = read_json(run / "data/fingerprint.json")
    fp["splits"]["train"]["n"], fp["splits"]["test"]["n"] = 2274, 402
    write_json(run / "data/fingerprint.json", fp)
    prompts = read_jsonl(run / "data/eval_prompts.jsonl")
    write_jsonl(run / "data/eval_prompts.jsonl",
                [{**prompts[i % len(prompts)], "sample_id": i, "dataset_index": d}
                 for i, d in enumerate(PAPER_DRAW)])  # fmt: skip
    pre = read_json(run / "preflight/report.json")
    pre["device"].update(name=H100, kind="cuda", total_vram_bytes=85_520_809_984)
    pre["decision"].update(device="cuda", dtype="bf16")
    write_json(run / "preflight/report.json", pre)
    for stage, effective, reserved in (("train-1", 8, 7.36), ("train-2", 32, 9.02),
                                       ("control", 8, 7.4)):  # fmt: skip
        s = read_json(run / stage / "summary.json")
        s.update(device="cuda", dtype="fp16", trainable_params=41_943_040,
                 effective_batch=effective,
                 memory_peak={"cuda_allocated_gib": reserved - 1.9,
                              "cuda_reserved_gib": reserved, "nvml_used_gib": reserved + 0.55})
        write_json(run / stage / "summary.json", s)
    verified = read_json(run / "handoff/verified.json")
    verified["trainable_params_loaded"] = 41_943_040
    write_json(run / "handoff/verified.json", verified)
    answers = read_jsonl(run / "generate/answers.jsonl")
    write_jsonl(run / "generate/answers.jsonl",
                [{**answers[0], "sample_id": i, "model": m, "cap": c}
                 for c in (256, 512) for m in ("base", "ft") for i in range(50)])  # fmt: skip
    gen = read_json(run / "generate/summary.json")
    gen["vram"] = {**(gen.get("vram") or {}), "peak_reserved_gib": 11.2}
    write_json(run / "generate/summary.json", gen)
    return run
