"""`repro plan`: what `repro all` would run, with estimated time, disk and VRAM.

With --gpu NAME, the time of every stage of the profile (the paper's, unless --profile names
another) on that GPU, projected from costs measured on an H100 under the 16 GB cap, set next to
the paper's own wall-clock for its two segments (P100, then T4). The method and its sources:
src/advisor_repro/hardware/projection.py, gpus.toml, measured_h100.toml; BENCHMARKS.md.

Examples:
  repro plan                        # the smoke profile
  repro plan --profile paper
  repro plan --gpu T4               # the paper run on a T4: P100, T4, V100, L4, A100, H100
"""

from __future__ import annotations

import argparse

from advisor_repro import pipeline
from advisor_repro.cli.common import add_run_options, say, select
from advisor_repro.hardware import projection
from advisor_repro.hardware.gpu import GIB


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="what would run, and its estimated time, disk and VRAM",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_options(p)
    p.add_argument("--gpu", metavar="NAME",
                   help="project every stage's time onto this GPU (default profile: paper)")
    p.set_defaults(func=main)


def plan_rows(sel) -> list[tuple[str, str, pipeline.Estimate, str]]:
    """(stage, state, estimate, detail): detail names an imported stage's source files."""
    rows = []
    for stage in pipeline.stages():
        st = pipeline.stage_state(stage, sel.cfg, sel.run_dir)
        est = stage.estimate(sel.cfg) if stage.estimate else pipeline.Estimate(0)
        rows.append((stage.name, st.state, est, st.reason if st.state == "imported" else ""))
    return rows


KEPT = {"done": "skip (up to date)", "imported": "skip (imported)"}


def fmt_seconds(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def hms(s: float) -> str:
    s = round(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"


def main(args: argparse.Namespace) -> int:
    if args.gpu:
        if args.profile is None:
            args.profile = "paper"
        return gpu_projection(args)
    sel = select(args)
    say(f"plan for {sel.run_dir} (profile {sel.profile})")
    todo_s = disk = vram = 0.0
    for name, state, est, detail in plan_rows(sel):
        action = KEPT.get(state, f"run ({state})")
        say(
            f"  {name:<12} {action:<22} ~{fmt_seconds(est.seconds):>9}  "
            f"disk {est.disk_bytes / GIB:6.2f} GiB  VRAM {est.vram_gib:5.1f} GiB"
            + (f"  {detail}" if detail else "")
        )
        if state not in KEPT:
            todo_s += est.seconds
            disk += est.disk_bytes
        vram = max(vram, est.vram_gib)
    say(
        f"  total to run: ~{fmt_seconds(todo_s)}, new disk ~{disk / GIB:.2f} GiB, "
        f"peak VRAM ~{vram:.1f} GiB (budget {sel.cfg.hardware.vram_budget_gib} GiB)"
    )
    return 0


def gpu_projection(args: argparse.Namespace) -> int:
    gpu = projection.gpu_named(args.gpu)  # an unknown name: ConfigError, exit 2
    sel = select(args)
    cfg, costs = sel.cfg, projection.measured()
    ref = projection.gpus()[costs["source"]["gpu"]]
    r = projection.ratio(gpu, costs)
    say(f"projection for profile {sel.profile} on a {gpu.name} (sm {gpu.compute_capability}, "
        f"{gpu.vram_gib} GiB; {gpu.where})")
    say(f"  FP16 throughput {gpu.fp16_tflops:g} TFLOPS = {r:.4f} x the {ref.name}'s "
        f"{ref.fp16_tflops:g} (NVIDIA datasheets, gpus.toml); training backend "
        f"{projection.backend_on(cfg, gpu)}; costs measured {costs['source']['date']} "
        f"(measured_h100.toml)")
    planned = [projection.Planned(s.name, s.estimate(cfg).seconds if s.estimate else 0.0,
                                  s.gpu_work) for s in pipeline.stages()]
    rows = projection.project(cfg, gpu, planned, costs)
    factor = projection.calibration(cfg, gpu, costs)
    if factor:
        say(f"  'paper-scaled': GPU work x {factor:.2f}, the paper's own {gpu.key} segment "
            f"over its projection: what this GPU sustained in the paper")
    for row in rows:
        scaled = f"{fmt_seconds(row.seconds + row.gpu_s * (factor - 1)):>9}" if factor else ""
        say(f"  {row.stage:<15} {fmt_seconds(row.seconds):>9} {scaled}  {row.basis}")
    for label, f in (("projected", 1.0), ("paper-scaled", factor)):
        if f:
            total = sum(row.seconds + row.gpu_s * (f - 1) for row in rows)
            control = sum(row.seconds + row.gpu_s * (f - 1) for row in rows
                          if row.stage == "control")
            say(f"  total {label} {fmt_seconds(total)} ({fmt_seconds(total - control)} without "
                f"the control run, which the paper did not make)")
    for row in rows:
        limit = _session_limit_h(cfg, row.stage)
        if limit and row.seconds > limit * 3600:
            then = {"pause": "it pauses before the limit with a checkpoint (exit 12) and the same "
                             "command in a new session continues it",
                    "stop": "it ends early at the limit, with fewer steps than planned",
                    }.get(cfg.train.session_limit_action, "the session may be cut off")
            say(f"  ! {row.stage} needs {fmt_seconds(row.seconds)}, over its {limit:g} h session "
                f"limit: {then} (train.session_limit_action)")
    say("compared with the paper's wall-clock (PAPER.md), each segment on the GPU it ran on:")
    for c in projection.paper_comparison(cfg, costs):
        say(f"  {c['stage']} on a {c['gpu']} ({c['backend']}): paper {hms(c['paper_s'])}, "
            f"projected {hms(c['projected_s'])}; paper / projected = "
            f"{c['paper_over_projected']:.2f} (the {c['gpu']}'s calibration factor: "
            f"paper-scaled, this segment's error is 0 by construction)")
    say("  datasheet peaks are full-clock figures (a 70 W T4 sustains less) and the P100 runs "
        "the hf backend here (Unsloth in the paper): each factor is fitted on the one segment "
        "the paper timed on that GPU, so the other segment on it is projected untested")
    return 0


def _session_limit_h(cfg, stage: str) -> float:
    t = cfg.train
    return {"train-1": t.segment1.session_limit_hours, "train-2": t.segment2.session_limit_hours,
            "control": t.control.session_limit_hours}.get(stage, 0.0)
