"""One training run in a fresh interpreter, the child side: `python -m
advisor_repro.training.process --stage train-N --out RUN/train-N --decision ... --train-text
...` (or control) builds the Config from <out>/config.json and runs `training.trainer.run` on
the inputs the stage resolved (`SegmentInputs`: the wing never builds a path into another
stage's folder); a ReproError is written to the
stage's error file, which the `repro` side (stages/train.py, through advisor_repro.fresh)
raises again. Nothing in memory crosses from segment 1 to segment 2, only the handoff bundle on
disk. Also here: the child's environment (`child_env`) and the error file's reader."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from advisor_repro import errors
from advisor_repro.config import Config, build, validate
from advisor_repro.files import read_json, write_json
from advisor_repro.training import segments
from advisor_repro.training.records import SegmentInputs

MODULE = "advisor_repro.training.process"
ERROR_FILE = ".child-error.json"  # dot-name: never an output


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


def child_error(out: Path) -> errors.ReproError | None:
    """The ReproError the training process wrote into `out`'s error file (the file removed),
    or None when it wrote none (it crashed)."""
    path = out / ERROR_FILE
    if not path.is_file():
        return None
    rec = read_json(path)
    path.unlink()
    cls = getattr(errors, rec["type"], errors.ReproError)
    if not (isinstance(cls, type) and issubclass(cls, errors.ReproError)):
        cls = errors.ReproError
    return cls(rec["problem"], rec["fix"])


# ---- the training process side -------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__)
    p.add_argument("--stage", required=True, choices=segments.STAGES)
    for name in ("out", "decision", "train-text"):
        p.add_argument(f"--{name}", required=True, type=Path)
    p.add_argument("--test-text", type=Path)
    p.add_argument("--bundle", type=Path)
    args = p.parse_args(argv)
    inputs = SegmentInputs(args.stage, args.out, args.decision, args.train_text,
                           args.test_text, args.bundle)
    out = inputs.out
    cfg = build(Config, read_json(out / "config.json"), str(out / "config.json"))
    validate(cfg)
    from advisor_repro.training import trainer
    try:
        trainer.run(cfg, inputs)
    except errors.ReproError as exc:
        write_json(out / ERROR_FILE, {"type": type(exc).__name__, "problem": exc.problem,
                                      "fix": exc.fix, "exit_code": exc.exit_code})
        # the parent `repro` raises it again from this file and prints it once
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
