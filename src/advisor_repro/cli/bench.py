"""`repro bench train`: tokens/s and peak memory of (a) this package's trainer, (b) a bare
Unsloth loop and (c) transformers + PEFT + bitsandbytes, on the real Mistral-7B shape with
random weights, at seq 2048 and micro-batch 2 and 4, each capped at the VRAM budget. Needs a
CUDA GPU; creates the random-weight base once (14.5 GB of fp16 safetensors in the cache).

Examples:
  repro bench train                               # paper settings, fp16 (T4 mode), JSON
  repro bench train --markdown                    # also print the table for BENCHMARKS.md
  repro bench train --paths a,b --steps 20 --out runs/bench/ab.json
  repro data --profile rehearsal --run-dir runs/bench-data    # then, at the data's lengths:
  repro bench train --mode lengths --profile rehearsal --run-dir runs/bench-data --markdown
                                      # segments 1 and 2: the written split against auto
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from advisor_repro.cli.common import add_run_options, say, select
from advisor_repro.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from advisor_repro.cli import bench_generate, bench_judge

    p = sub.add_parser("bench", help="GPU benchmarks: `repro bench train`, `repro bench "
                       "generate`, `repro bench judge`",
                       description=__doc__ + "\n" + bench_generate.__doc__ + "\n"
                       + bench_judge.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("train", "generate", "judge"), help="what to benchmark")
    add_run_options(p)
    p.add_argument("--out", help="JSON result file (default: runs/bench/<what>.json)")
    p.add_argument("--mode", choices=("shapes", "lengths"), default="shapes",
                   help="shapes: the three paths at seq 2048 (default); lengths: the written "
                   "split against train.*.split = auto, segments 1 and 2, at the lengths of the "
                   "run directory's data/train_text.jsonl")
    p.add_argument("--splits", default="fixed,auto", help="--mode lengths: the splits to "
                   "compare with the first: fixed (as written), auto, or a micro-batch K, each "
                   "optionally with :length (train.step_order), :padN "
                   "(train.pad_to_multiple_of) and :pf (train.padding_free)")
    p.add_argument("--segments", default="train-1,train-2", help="--mode lengths: which "
                   "segments to measure")
    p.add_argument("--no-seen", action="store_true", help="--mode lengths: skip the second "
                   "measured run of each split on the same (seen) sequences")
    p.add_argument("--paths", default="a,b,c", help="which of a (package), b (bare Unsloth), "
                   "c (transformers+PEFT+bnb) to run, comma-separated")
    p.add_argument("--micro-batches", default="2,4", help="micro-batch sizes (segment 1, 2)")
    p.add_argument("--steps", type=int, help="timed steps per shape (default 10); --mode "
                   "lengths: optimizer steps per segment and split, the first untimed (default 4)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    p.add_argument("--dtype", choices=("fp16", "bf16"), default="fp16",
                   help="compute dtype (fp16 = what the P100/T4 ran)")
    p.add_argument("--budget-gib", type=float,
                   help="per-process VRAM cap (default: the profile's hardware.vram_budget_gib)")
    p.add_argument("--markdown", action="store_true", help="print the BENCHMARKS.md table")
    bench_generate.add_options(p)
    bench_judge.add_options(p)
    p.set_defaults(func=main)


def _list(text: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items or (allowed and any(x not in allowed for x in items)):
        raise ConfigError(f"bad list {text!r}", f"use a comma-separated subset of {allowed}"
                          if allowed else "use comma-separated numbers, e.g. 2,4")
    return items


def main(args: argparse.Namespace) -> int:
    from advisor_repro.training import bench as bench_train
    if args.what == "generate":
        from advisor_repro.cli import bench_generate

        return bench_generate.main(args)
    if args.what == "judge":
        from advisor_repro.cli import bench_judge

        return bench_judge.main(args)
    args.profile = args.profile or "paper"
    sel = select(args)
    if args.mode == "lengths":
        return _lengths(args, sel)
    paths = _list(args.paths, tuple(bench_train.PATHS))
    try:
        micro = [int(x) for x in _list(args.micro_batches)]
    except ValueError as exc:
        raise ConfigError(f"--micro-batches {args.micro_batches!r} is not a list of integers",
                          "write e.g. --micro-batches 2,4") from exc
    out = Path(args.out or "runs/bench/train.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    budget = args.budget_gib or sel.cfg.hardware.vram_budget_gib
    record = bench_train.run(sel.cfg, out, paths, micro, args.steps or 10, args.warmup, args.dtype,
                             budget, say)
    if args.markdown:
        say(bench_train.markdown(record))
    say(f"wrote {out}")
    return 0


def _lengths(args: argparse.Namespace, sel: Any) -> int:
    from advisor_repro.training import bench_split

    splits = bench_split.parse_splits(args.splits)
    out = Path(args.out or "runs/bench/train-lengths.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    budget = args.budget_gib or sel.cfg.hardware.vram_budget_gib
    segments = bench_split.parse_segments(args.segments)
    record = bench_split.run(sel.cfg, sel.run_dir, out, splits, args.steps or 4, args.dtype,
                             budget, say, segments=segments, seen=not args.no_seen)
    if args.markdown:
        say(bench_split.markdown(record))
    say(f"wrote {out}")
    return 0
