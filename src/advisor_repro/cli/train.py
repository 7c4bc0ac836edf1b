"""`repro train --segment 1|2` and `repro control`: the training stages, with a backend choice.

`repro train --segment N` runs the stage train-N (the same as `repro train-N`); each segment
trains in its own fresh process. A segment stopped half-way (a crash, kill -9, a session that
ended) resumes from its last checkpoint when the same command is run again.

Examples:
  repro train --segment 1                          # segment 1 of the smoke replay (CPU)
  repro train --segment 2 --run-dir runs/paper     # segment 2, after `repro handoff`
  repro train --segment 1 --profile paper --backend hf
  repro control                                    # the continuous 3-epoch control run
"""

from __future__ import annotations

import argparse

from advisor_repro.cli import run
from advisor_repro.cli.common import add_run_options
from advisor_repro.training.backends import NAMES

COMMANDS = ("control",)  # stage commands this module registers itself (they take --backend)
HELP = {
    "train": "run a training segment: --segment 1 (fresh LoRA) or 2 (from the handoff bundle)",
    "control": "run the control: the same 3 epochs in one process, one optimizer and schedule",
}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    for name, help_text in HELP.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add_run_options(p)
        if name == "train":
            p.add_argument("--segment", type=int, choices=(1, 2), required=True,
                           help="1 = the P100 session, 2 = the T4 session")
        p.add_argument("--backend", choices=NAMES,
                       help="training backend (same as --set model.backend=NAME): unsloth is "
                       "the paper's (GPU), hf runs on CPU and GPU")
        p.add_argument("--force", action="store_true", help="rerun even if up to date")
        p.set_defaults(func=main, stage=name)


def stage_name(args: argparse.Namespace) -> str:
    return f"train-{args.segment}" if args.stage == "train" else args.stage


def main(args: argparse.Namespace) -> int:
    if args.backend:
        args.overrides = [*args.overrides, f"model.backend='{args.backend}'"]
    args.stage = stage_name(args)
    return run.main_stage(args)
