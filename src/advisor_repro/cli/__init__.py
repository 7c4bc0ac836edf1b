"""The `repro` command: parse, build the Config, call the pipeline. Nothing else lives here."""

from __future__ import annotations

import argparse
import sys

from advisor_repro import __version__
from advisor_repro.errors import EXIT_CODES, ReproError


def build_parser() -> argparse.ArgumentParser:
    from advisor_repro import pipeline
    from advisor_repro.cli import bench, fetch, import_release, plan, run, status, train

    stage_lines = "\n".join(f"  {s.name:<12} {s.summary}" for s in pipeline.stages())
    codes = "\n".join(f"  {k:<4} {v}" for k, v in sorted(EXIT_CODES.items()))
    parser = argparse.ArgumentParser(
        prog="repro",
        description="Replay and check arXiv 2504.15610: a 7B QLoRA advisor on free-tier GPUs.",
        epilog=f"stages, in the order `repro all` runs them:\n{stage_lines}\n\n"
        f"exit codes:\n{codes}\n\nexamples:\n  repro all\n  repro status\n"
        "  repro plan --profile paper\n  repro data --set data.source=/path/to/folder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"advisor-repro {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run.add_parser(sub, "all", "run every stage in order, skipping the ones up to date")
    for stage in pipeline.stages():
        if stage.name not in train.COMMANDS:  # those take --backend: cli/train.py adds them
            summary = stage.summary.replace("%", "%%")  # argparse %-formats help strings
            run.add_parser(sub, stage.name, f"run only the stage '{stage.name}': {summary}")
    train.add_parsers(sub)
    bench.add_parser(sub)
    status.add_parser(sub)
    plan.add_parser(sub)
    fetch.add_parser(sub)
    import_release.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except ReproError as exc:
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "interrupted: finished stages are kept; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
