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

`repro bench generate`: batched generation vs one prompt at a time on the 7B shape (GPU).

Examples:
  repro bench generate                                  # 100 answers x 512 tokens, JSON
  repro bench generate --markdown                       # also print the BENCHMARKS.md table
  repro bench generate --answers 100 --new-tokens 512 --sequential 3 --variants dynamic,static

`repro bench judge`: the local judge batched vs one question at a time, under the rubric's
grammar vs free decoding, on the paper's judge shape (Qwen2.5-14B, random weights, NF4, GPU).

Examples:
  repro bench judge --markdown                          # 8 questions on the GPU, JSON + table
  repro bench judge --questions 12 --free-tokens 64
  repro bench judge --scale tiny --markdown             # 2 small layers on the CPU (code path)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from advisor_repro.cli.common import add_run_options, say, select
from advisor_repro.config import Config
from advisor_repro.errors import ConfigError
from advisor_repro.files import write_json

VARIANTS = ("dynamic", "static")  # KV cache of the batched runs (transformers' names)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="GPU benchmarks: `repro bench train`, `repro bench "
                       "generate`, `repro bench judge`",
                       description=__doc__,
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
    _generate_options(p)
    _judge_options(p)
    p.set_defaults(func=main)


def _list(text: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items or (allowed and any(x not in allowed for x in items)):
        raise ConfigError(f"bad list {text!r}", f"use a comma-separated subset of {allowed}"
                          if allowed else "use comma-separated numbers, e.g. 2,4")
    return items


def main(args: argparse.Namespace) -> int:
    from advisor_repro.bench import train as bench_train

    if args.what == "generate":
        return _generate(args)
    if args.what == "judge":
        return _judge(args)
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
    opts = bench_train.TrainOptions(paths, micro, args.steps or 10, args.warmup, args.dtype,
                                    budget)
    record = bench_train.run(sel.cfg, out, opts, say)
    if args.markdown:
        say(bench_train.markdown(record))
    say(f"wrote {out}")
    return 0


def _lengths(args: argparse.Namespace, sel: Any) -> int:
    from advisor_repro.bench import lengths

    splits = lengths.parse_splits(args.splits)
    out = Path(args.out or "runs/bench/train-lengths.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    budget = args.budget_gib or sel.cfg.hardware.vram_budget_gib
    segments = lengths.parse_segments(args.segments)
    opts = lengths.LengthsOptions(splits, args.steps or 4, args.dtype, budget, segments,
                                  seen=not args.no_seen)
    record = lengths.run(sel.cfg, sel.run_dir, out, opts, say)
    if args.markdown:
        say(lengths.markdown(record))
    say(f"wrote {out}")
    return 0


def _with_budget(cfg: Config, budget_gib: float | None) -> Config:
    """The profile's config, with --budget-gib as its VRAM budget when given."""
    if not budget_gib:
        return cfg
    from dataclasses import replace

    return replace(cfg, hardware=replace(cfg.hardware, vram_budget_gib=budget_gib))


def _generate_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("bench generate")
    g.add_argument("--answers", type=int, default=100, help="answers generated batched")
    g.add_argument("--new-tokens", type=int, default=512, help="new tokens per answer (forced)")
    g.add_argument("--sequential", type=int, default=3,
                   help="prompts generated one at a time (tokens/s extrapolated to all)")
    g.add_argument("--variants", default="dynamic,static",
                   help=f"batched runs by KV cache, comma-separated subset of {VARIANTS}")
    g.add_argument("--scale", choices=("full", "tiny"), default="full",
                   help="tiny = 2 small layers on the CPU (a code-path check, no GPU)")


def _generate(args: argparse.Namespace) -> int:
    from advisor_repro.bench import generate as bench_generate
    args.profile = args.profile or "paper"
    sel = select(args)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not variants or any(v not in VARIANTS for v in variants):
        raise ConfigError(f"--variants {args.variants!r}", f"use a subset of {VARIANTS}")
    if min(args.answers, args.new_tokens, args.sequential) < 1 or args.sequential > args.answers:
        raise ConfigError("--answers, --new-tokens and --sequential must be >= 1, and "
                          "--sequential <= --answers", "e.g. --answers 100 --sequential 3")
    cfg = _with_budget(sel.cfg, args.budget_gib)
    out = Path(args.out or "runs/bench/generate.json")
    opts = bench_generate.GenerateOptions(args.answers, args.new_tokens, args.sequential,
                                          variants, args.scale)
    record = bench_generate.run(cfg, opts, say, save=lambda r: write_json(out, r))
    if args.markdown:
        say(bench_generate.markdown(record))
    say(f"wrote {out}")
    return 0


def _judge_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("bench judge")
    g.add_argument("--questions", type=int, default=8, help="pair questions judged")
    g.add_argument("--free-tokens", type=int, default=64,
                   help="tokens each row decodes without the grammar (the per-token baseline)")
    g.add_argument("--standin-dir", default="",
                   help="where the random-weight judge is written once (default: "
                        "/tmp/advisor-repro-judge-standin, or -tiny with --scale tiny)")


def _judge(args: argparse.Namespace) -> int:
    from advisor_repro.bench import judge as bench

    args.profile = args.profile or "paper"
    sel = select(args)
    if args.questions < 2 or args.free_tokens < 2:
        raise ConfigError("--questions and --free-tokens must be >= 2",
                          "e.g. --questions 8 --free-tokens 64")
    cfg = _with_budget(sel.cfg, args.budget_gib)
    standin = Path(args.standin_dir or "/tmp/advisor-repro-judge-standin"
                   + ("-tiny" if args.scale == "tiny" else ""))
    out = Path(args.out or "runs/bench/judge.json")
    opts = bench.JudgeOptions(args.questions, args.free_tokens, args.scale, standin)
    record = bench.run(cfg, opts, say, save=lambda r: write_json(out, r))
    table = bench.markdown(record)
    out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    if args.markdown:
        say(table)
    say(f"wrote {out} and {out.with_suffix('.md')}")
    return 0
