"""One training segment in a fresh interpreter: the `repro` side starts
`python -m advisor_repro.training.process --run-dir RUN --stage train-N` (or control) and
raises the child's ReproError again from its error file; the child side builds the Config from
<stage>/config.json and runs `training.trainer.run`. Nothing in memory crosses from segment 1
to segment 2, only the handoff bundle on disk. Shared by the train-1, train-2 and control
stages."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

from advisor_repro import errors
from advisor_repro.config import Config, build, validate
from advisor_repro.files import read_json, write_json
from advisor_repro.stages.contract import Estimate, StageContext, StageResult
from advisor_repro.training import segments

MODULE = "advisor_repro.training.process"
ERROR_FILE = ".child-error.json"  # dot-name: never an output
TRAIN_TEXT, TEST_TEXT = "data/train_text.jsonl", "data/test_text.jsonl"
DECISION = "preflight/decision.json"
# Config slices every training run depends on (checkpoint_every only affects crash resume).
COMMON = (
    "model.source", "model.random_scale", "model.train_base", "model.train_base_revision",
    "model.backend", "hardware.vram_budget_gib", "train.max_seq_length", "train.optimizer",
    "train.lr_scheduler", "train.max_grad_norm", "train.weight_decay", "train.seed",
    "train.gradient_checkpointing", "train.unsloth_checkpointing", "train.padding_side",
    "train.packing", "train.loss_on", "train.precision", "train.session_limit_action",
    "train.lora",
)


class TrainingCrashed(RuntimeError):
    """The training process died without a ReproError: not a refusal, so the stage stays
    partial and a rerun resumes from its last checkpoint."""


# ---- the repro process side ----------------------------------------------------------------
def launch(cfg: Config, ctx: StageContext) -> dict:
    """Run ctx.name's training in a fresh interpreter; return its summary.json."""
    for rel in ctx.needs:
        ctx.input(rel)  # every declared input exists, or StageInputError names the stage
    write_json(ctx.out / "config.json", cfg.to_dict())
    (ctx.out / ERROR_FILE).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", MODULE, "--run-dir", str(ctx.run_dir), "--stage", ctx.name]
    cpu = read_json(ctx.input(DECISION)).get("device") == "cpu"
    proc = subprocess.Popen(cmd, env=child_env(cpu), preexec_fn=die_with_parent)
    code = _wait_passing_sigterm(proc)
    if code == 0:
        return read_json(ctx.out / "summary.json")
    raise _child_error(ctx, code)


def child_env(cpu: bool) -> dict[str, str]:
    """The training process's environment."""
    # PYTHONSAFEPATH (3.11+): the working directory is not put on sys.path, so a folder there
    # named like a package (a stray ./triton cache) cannot shadow it in the training process.
    # PYTHONHASHSEED: PEFT writes the LoRA target_modules of adapter_config.json from a set,
    # whose order follows the per-process string hash seed: with a random one the adapter's
    # bytes, and every hash of it (handoff.json, the stage records), differed run to run.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONSAFEPATH": "1", "PYTHONHASHSEED": "0"}
    if cpu:
        # Idle OpenMP threads sleep instead of spinning: on CPU cores shared with anything else,
        # GNU OpenMP's busy-waiting made each step 3-10x slower (NF4 + LoRA, 2 cores, measured).
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _wait_passing_sigterm(proc: subprocess.Popen) -> int:
    """Wait for the training process; a SIGTERM to `repro` meanwhile is passed on to it (it
    checkpoints and exits 14) instead of killing `repro`, whose death would SIGKILL it."""
    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)

    try:
        previous = signal.signal(signal.SIGTERM, forward)
    except ValueError:  # not the main thread: no handler can be set, wait as before
        return proc.wait()
    try:
        return proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


def die_with_parent() -> None:
    """Linux: a fresh process of `repro` (training, the handoff's load check) gets SIGKILL
    when `repro` dies, so a killed run never leaves an orphan writing into the run directory."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _child_error(ctx: StageContext, code: int) -> Exception:
    path = ctx.out / ERROR_FILE
    if path.is_file():
        rec = read_json(path)
        path.unlink()
        cls = getattr(errors, rec["type"], errors.ReproError)
        if not (isinstance(cls, type) and issubclass(cls, errors.ReproError)):
            cls = errors.ReproError
        return cls(rec["problem"], rec["fix"])
    how = f"signal {-code}" if code < 0 else f"exit code {code}"
    return TrainingCrashed(
        f"the {ctx.name} training process died ({how}); its output is above. "
        f"Rerun the same command to resume from the last checkpoint in {ctx.out}/checkpoints"
    )


def result_of(summary: dict) -> StageResult:
    figures = {
        "steps": summary["optimizer_steps"],
        "loss": f"{summary['start_loss']:.4g}->{summary['end_loss']:.4g}"
        if summary["start_loss"] is not None else None,
        "trainable": summary["trainable_params"],
        "tok/s": summary["tokens_per_s"],
    }
    if "micro_batch" in summary:  # the split in force, and whether auto chose it
        figures["split"] = (f"{summary['micro_batch']}x{summary['grad_accum']} "
                            f"({summary['micro_batch_choice']['mode']})")
    if summary.get("heldout"):
        figures["heldout"] = round(summary["heldout"]["loss"], 4)
    return StageResult(figures=figures, warnings=summary["warnings"])


def estimate_for(stage: str):
    def estimate(cfg: Config) -> Estimate:
        plan = segments.plan_for(cfg, stage, cfg.data.expected_train or 100)
        n = cfg.data.expected_train or 100
        steps = segments.optimizer_steps(plan, n)
        disk = cfg.train.lora.expected_trainable * 4 * 6 or 2**28  # adapter + 2 checkpoints
        if cfg.hardware.device == "cpu" or cfg.model.source == "smoke":
            seconds = 20 + 2.0 * steps * plan.shape.effective  # ~2 s a 256-token sequence
            return Estimate(seconds=seconds, disk_bytes=disk)
        paper = {s: segments.PAPER_SECONDS[s] / segments.PAPER_STEPS[s] for s in PAPER_STAGES}
        per_step = paper.get(stage) or paper["train-1"] * plan.shape.effective / 8
        return Estimate(seconds=per_step * steps, disk_bytes=disk, vram_gib=12.1)

    return estimate


PAPER_STAGES = ("train-1", "train-2")


def prerequisites_for(stage: str):
    """A training stage's prerequisites (Stage.prerequisites): its base model loadable, and
    its projected time within its session limit while train.session_limit_action = "stop"
    (it would end there, short of its steps; "pause" checkpoints and continues in the next
    session, the free-tier way; "warn" runs on)."""

    def prerequisites(cfg: Config) -> list[errors.ReproError]:
        from advisor_repro.models import hub

        found: list[errors.ReproError] = list(hub.base_unavailable(cfg.model, "train"))
        n = cfg.data.expected_train or 100
        plan = segments.plan_for(cfg, stage, n)
        limit_h, action = plan.session_limit_hours, cfg.train.session_limit_action
        hours = estimate_for(stage)(cfg).seconds / 3600
        if limit_h and hours > limit_h and action == "stop":
            found.append(errors.ResourceError(
                f"{stage} is projected at {hours:.2f} h, over its {limit_h:g} h session limit, "
                f"and train.session_limit_action = 'stop' would end it there, short of its "
                f"{segments.optimizer_steps(plan, n)} optimizer steps",
                "--set train.session_limit_action='pause' (checkpoint, continue in the next "
                "session), or raise the segment's session_limit_hours"))
        return found

    return prerequisites


# ---- the training process side -------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__)
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--stage", required=True, choices=segments.STAGES)
    args = p.parse_args(argv)
    out = args.run_dir / args.stage
    cfg = build(Config, read_json(out / "config.json"), str(out / "config.json"))
    validate(cfg)
    from advisor_repro.training import trainer
    try:
        trainer.run(cfg, args.run_dir, args.stage)
    except errors.ReproError as exc:
        write_json(out / ERROR_FILE, {"type": type(exc).__name__, "problem": exc.problem,
                                      "fix": exc.fix, "exit_code": exc.exit_code})
        # the parent `repro` raises it again from this file and prints it once
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
