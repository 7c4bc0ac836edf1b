"""`repro plan`: what `repro all` would run, with estimated time, disk and VRAM.

Examples:
  repro plan                        # the smoke profile
  repro plan --profile paper
"""

from __future__ import annotations

import argparse

from advisor_repro import pipeline
from advisor_repro.cli.common import add_run_options, say, select


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="what would run, and its estimated time, disk and VRAM",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_options(p)
    p.set_defaults(func=main)


def plan_rows(sel) -> list[tuple[str, str, pipeline.Estimate]]:
    rows = []
    for stage in pipeline.stages():
        st = pipeline.stage_state(stage, sel.cfg, sel.run_dir)
        est = stage.estimate(sel.cfg) if stage.estimate else pipeline.Estimate(0)
        rows.append((stage.name, st.state, est))
    return rows


def fmt_seconds(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def main(args: argparse.Namespace) -> int:
    sel = select(args)
    say(f"plan for {sel.run_dir} (profile {sel.profile})")
    todo_s = disk = vram = 0.0
    for name, state, est in plan_rows(sel):
        action = "skip (up to date)" if state == "done" else f"run ({state})"
        say(
            f"  {name:<12} {action:<22} ~{fmt_seconds(est.seconds):>9}  "
            f"disk {est.disk_bytes / 2**30:6.2f} GiB  VRAM {est.vram_gib:5.1f} GiB"
        )
        if state != "done":
            todo_s += est.seconds
            disk += est.disk_bytes
        vram = max(vram, est.vram_gib)
    say(
        f"  total to run: ~{fmt_seconds(todo_s)}, new disk ~{disk / 2**30:.2f} GiB, "
        f"peak VRAM ~{vram:.1f} GiB (budget {sel.cfg.hardware.vram_budget_gib} GiB)"
    )
    return 0
