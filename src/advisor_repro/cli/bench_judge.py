"""`repro bench judge`: the local judge batched vs one question at a time, under the rubric's
grammar vs free decoding, on the paper's judge shape (Qwen2.5-14B, random weights, NF4, GPU).

Examples:
  repro bench judge --markdown                          # 8 questions on the GPU, JSON + table
  repro bench judge --questions 12 --free-tokens 64
  repro bench judge --scale tiny --markdown             # 2 small layers on the CPU (code path)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from advisor_repro.cli.common import say, select
from advisor_repro.errors import ConfigError
from advisor_repro.files import write_json


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("bench judge")
    g.add_argument("--questions", type=int, default=8, help="pair questions judged")
    g.add_argument("--free-tokens", type=int, default=64,
                   help="tokens each row decodes without the grammar (the per-token baseline)")
    g.add_argument("--standin-dir", default="",
                   help="where the random-weight judge is written once (default: "
                        "/tmp/advisor-repro-judge-standin, or -tiny with --scale tiny)")


def main(args: argparse.Namespace) -> int:
    from advisor_repro.judges import bench

    args.profile = args.profile or "paper"
    sel = select(args)
    if args.questions < 2 or args.free_tokens < 2:
        raise ConfigError("--questions and --free-tokens must be >= 2",
                          "e.g. --questions 8 --free-tokens 64")
    cfg = sel.cfg
    if args.budget_gib:
        from dataclasses import replace

        cfg = replace(cfg, hardware=replace(cfg.hardware, vram_budget_gib=args.budget_gib))
    standin = Path(args.standin_dir or "/tmp/advisor-repro-judge-standin"
                   + ("-tiny" if args.scale == "tiny" else ""))
    out = Path(args.out or "runs/bench/judge.json")
    record = bench.run(cfg, args.questions, args.free_tokens, args.scale, standin, say,
                       save=lambda r: write_json(out, r))
    table = bench.markdown(record)
    out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    if args.markdown:
        say(table)
    say(f"wrote {out} and {out.with_suffix('.md')}")
    return 0
