"""`repro bench generate`: batched generation vs one prompt at a time on the 7B shape (GPU).

Examples:
  repro bench generate                                  # 100 answers x 512 tokens, JSON
  repro bench generate --markdown                       # also print the BENCHMARKS.md table
  repro bench generate --answers 100 --new-tokens 512 --sequential 3 --variants dynamic,static
"""

from __future__ import annotations

import argparse
from pathlib import Path

from advisor_repro.cli.common import say, select
from advisor_repro.errors import ConfigError
from advisor_repro.files import write_json

VARIANTS = ("dynamic", "static")  # KV cache of the batched runs (transformers' names)


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("bench generate")
    g.add_argument("--answers", type=int, default=100, help="answers generated batched")
    g.add_argument("--new-tokens", type=int, default=512, help="new tokens per answer (forced)")
    g.add_argument("--sequential", type=int, default=3,
                   help="prompts generated one at a time (tokens/s extrapolated to all)")
    g.add_argument("--variants", default="dynamic,static",
                   help=f"batched runs by KV cache, comma-separated subset of {VARIANTS}")
    g.add_argument("--scale", choices=("full", "tiny"), default="full",
                   help="tiny = 2 small layers on the CPU (a code-path check, no GPU)")


def main(args: argparse.Namespace) -> int:
    from advisor_repro.evaluation import bench as bench_generate
    args.profile = args.profile or "paper"
    sel = select(args)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not variants or any(v not in VARIANTS for v in variants):
        raise ConfigError(f"--variants {args.variants!r}", f"use a subset of {VARIANTS}")
    if min(args.answers, args.new_tokens, args.sequential) < 1 or args.sequential > args.answers:
        raise ConfigError("--answers, --new-tokens and --sequential must be >= 1, and "
                          "--sequential <= --answers", "e.g. --answers 100 --sequential 3")
    cfg = sel.cfg
    if args.budget_gib:
        from dataclasses import replace

        cfg = replace(cfg, hardware=replace(cfg.hardware, vram_budget_gib=args.budget_gib))
    out = Path(args.out or "runs/bench/generate.json")
    record = bench_generate.run(cfg, args.answers, args.new_tokens, args.sequential, variants,
                                args.scale, say, save=lambda r: write_json(out, r))
    if args.markdown:
        say(bench_generate.markdown(record))
    say(f"wrote {out}")
    return 0
