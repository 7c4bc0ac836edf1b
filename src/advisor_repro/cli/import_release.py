"""`repro import-release DIR [DIR ...]`: the paper's released evaluation files -> a run
directory, so `repro status`, `repro metrics`, the judge statistics and `repro verify` run
without a GPU.

Files are recognised by their header (CSV) or keys (JSON), not by name: prompts, base and FT
outputs, judge scores, raw BERTScore (PAPER.md "Released artifacts"); any subset may be there.
Everything is checked before anything is written; a malformed file is refused (exit 3) with
its name, row and column. With a judge-scores file, the run records judge.backend = "replay"
and judge.replay_file = that file: the released verdicts are this run's judge.

Examples (the author's repository keeps the files in two folders; subfolders are not read):
  repro import-release ~/StudyAbroadGPT/data/v4-50-prompt-eval ~/StudyAbroadGPT/docs/eval
  repro import-release DIR --run-dir runs/release-v4 --force    # replace an earlier import
  repro import-release DIR --base base_out.csv --ft lora_out.csv --cap 256
  repro verify --run-dir runs/release                           # then: the paper's checks
"""

from __future__ import annotations

import argparse
from pathlib import Path

from advisor_repro.cli.common import add_run_options, command_line, say, select
from advisor_repro.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-release",
        help="import the paper's released evaluation files into a run directory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folders", metavar="DIR", nargs="+", type=Path,
                   help="folder(s) holding the released files")
    add_run_options(p)
    p.add_argument("--base", type=Path, help="the base model's outputs CSV (when the file "
                   "names do not say which is which)")
    p.add_argument("--ft", type=Path, help="the fine-tuned model's outputs CSV")
    p.add_argument("--cap", type=int, help="token cap of the outputs (default: the BERTScore "
                   "file's token_cap, else inferred from the truncated answers)")
    p.add_argument("--force", action="store_true",
                   help="replace data/, generate/, metrics/, judge/ already in the run directory")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from advisor_repro.manifest import mark_latest, update_manifest, write_manifest
    from advisor_repro.pipeline import locked
    from advisor_repro.release.importer import import_release
    from advisor_repro.release.reader import read_release

    folders = [f.expanduser() for f in args.folders]
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError(f"{folder} is not a folder",
                              "give the folder(s) of the released files")
    if args.cap is not None and args.cap <= 0:
        raise ConfigError(f"--cap {args.cap} must be a positive token count", "e.g. --cap 256")
    args.profile = args.profile or "paper"  # the released files are the paper's run
    if not args.run_dir and not args.run_id:
        args.run_id = "release"
    judge_file = read_release(folders, args.base, args.ft).judge
    if judge_file is not None:  # the run's judge is the released verdicts: the replay judge
        args.overrides += ["judge.backend='replay'",
                           f"judge.replay_file='{judge_file.path.resolve()}'"]
    sel = select(args)
    with locked(sel.run_dir):
        done = import_release(folders, sel.run_dir, sel.cfg, args.base, args.ft, args.cap,
                              args.force)
        write_manifest(sel.run_dir, sel.cfg, sel.profile, sel.overrides, command_line())
        update_manifest(sel.run_dir, "release",
                        {"folders": [str(f.resolve()) for f in folders], **done.to_json()})
        mark_latest(sel.run_dir)
    for f in done.files:
        say(f"  {f['kind']:<13} {f['file']}  sha256 {f['sha256'][:12]}")
    for name in done.ignored:
        say(f"  ignored       {name}")
    written = ", ".join(f"{k}/ ({', '.join(f'{a}={b}' for a, b in v.items())})"
                        for k, v in done.written.items())
    say(f"imported into {sel.run_dir}: {written or 'data/ only'}")
    say(f"next: repro status --run-dir {sel.run_dir}; repro verify --run-dir {sel.run_dir}")
    return 0
