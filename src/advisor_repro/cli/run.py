"""`repro all` and `repro <stage>`: run the stages over one run directory.

Examples:
  repro all                                   # the smoke replay (CPU, minutes)
  repro all --profile paper                   # the paper on a 16 GB GPU
  repro all --force data                      # rerun data (and so everything after it)
  repro all --force judge                     # recompute an imported (or up-to-date) stage
  repro data --set data.source=/path/to/folder

A stage checks its inputs, its folder and the disk before it writes anything: a refusal
leaves the run directory as it was. Stages imported by `repro import-release` are left as
they are unless forced.
"""

from __future__ import annotations

import argparse

from advisor_repro import pipeline, prerequisites
from advisor_repro.cli.common import Selection, add_run_options, command_line, say, select
from advisor_repro.errors import VerifyFailed
from advisor_repro.files import read_json
from advisor_repro.manifest import mark_latest, write_manifest


def add_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_options(p)
    if name == "all":
        p.add_argument(
            "--force",
            action="append",
            default=[],
            metavar="STAGE",
            help="rerun STAGE even if it is up to date (repeatable)",
        )
    else:
        p.add_argument("--force", action="store_true", help="rerun even if up to date")
    if name in ("all", "verify"):
        p.add_argument("--strict", action="store_true",
                       help="a skipped required check fails too (= --set verify.strict=true)")
    p.set_defaults(func=main_all if name == "all" else main_stage, stage=name)


def _header(sel: Selection) -> None:
    mark_latest(sel.run_dir)
    say(f"run directory: {sel.run_dir}  (profile {sel.profile}, config {sel.cfg.hash[:12]})")


def _recorder(sel: Selection):
    """Records the invocation in the manifest once, when the first stage is about to write:
    a command that only skips or is refused leaves manifest.json as it was."""
    done = []

    def record() -> None:
        if not done:
            write_manifest(sel.run_dir, sel.cfg, sel.profile, sel.overrides, command_line())
            done.append(True)

    return record


def _strict(args: argparse.Namespace) -> None:
    if getattr(args, "strict", False):
        args.overrides = [*args.overrides, "verify.strict=true"]


def main_all(args: argparse.Namespace) -> int:
    _strict(args)
    sel = select(args)
    for name in args.force:
        pipeline.get_stage(name)  # refuse a misspelt stage before any work
    ready(sel, args.force)
    with pipeline.locked(sel.run_dir, log=say):
        _header(sel)
        record = _recorder(sel)
        counts = {"ran": 0, "skipped": 0, "imported": 0}
        verify_failed: VerifyFailed | None = None
        for stage in pipeline.stages():
            try:
                what, _ = pipeline.run_stage(stage, sel.cfg, sel.run_dir,
                                             force=stage.name in args.force, log=say,
                                             before_write=record)
            except VerifyFailed as exc:  # still write the report, then fail with verify's code
                verify_failed, what = exc, "ran"
            counts[what] += 1
    if verify_failed is not None:
        raise verify_failed
    imported = f", {counts['imported']} imported and kept" if counts["imported"] else ""
    say(
        f"all stages done ({counts['ran']} ran, {counts['skipped']} up to date{imported}). "
        f"See: repro status --run-dir {sel.run_dir}"
    )
    return 0


def ready(sel: Selection, forced: list[str]) -> None:
    """Every prerequisite of the stages this run will run (keys, models, disk, sessions),
    checked before the first one runs and before anything is written (no lock, no `latest`
    link): one refusal names them all."""
    stages = pipeline.stages()
    states = {s.name: pipeline.stage_state(s, sel.cfg, sel.run_dir).state for s in stages}
    to_run = prerequisites.stages_to_run(stages, states, forced)
    prerequisites.check_plan(sel.cfg, sel.run_dir, to_run)


def main_stage(args: argparse.Namespace) -> int:
    _strict(args)
    sel = select(args)
    stage = pipeline.get_stage(args.stage)
    with pipeline.locked(sel.run_dir, log=say):
        _header(sel)
        what, _ = pipeline.run_stage(stage, sel.cfg, sel.run_dir, force=args.force, log=say,
                                     before_write=_recorder(sel))
    if stage.name == "verify":  # the verdict's state, also when verify was up to date
        head = read_json(sel.run_dir / "verify/verify.json").get("headline") or {}
        if what != "ran" and head:
            say(head["line"])
        return int(head.get("exit_code", 0))
    return 0
