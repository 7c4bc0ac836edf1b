"""Options shared by the commands, and turning them into (Config, run directory)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from advisor_repro.config import Config, load_config
from advisor_repro.files import read_json
from advisor_repro.manifest import last_run_dir, resolve_run_dir

DEFAULT_PROFILE = "smoke"


def add_run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run selection")
    g.add_argument(
        "--profile",
        help=f"profile name in repro/profiles/ or a .toml path "
        f"(default: the run directory's, else '{DEFAULT_PROFILE}')",
    )
    g.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a profile value, e.g. --set train.segment2.lr=1e-4 "
        "(repeatable; values are TOML)",
    )
    g.add_argument(
        "--allow-unsupported-gpu",
        action="store_true",
        help="go on (with a warning in the manifest) on a GPU preflight refuses; "
        "same as --set hardware.allow_unsupported_gpu=true",
    )
    g.add_argument("--run-dir", help="run directory (default: runs/<run-id>)")
    g.add_argument("--run-id", help="name of the run under runs/ (default: the profile name)")


@dataclass
class Selection:
    cfg: Config
    run_dir: Path
    profile: str
    overrides: list[str]


def select(args: argparse.Namespace) -> Selection:
    """Profile and overrides come from the command line. When it names neither, an existing
    run directory (--run-dir, else runs/latest) is continued with its recorded ones."""
    profile, overrides = args.profile, list(args.overrides)
    if args.allow_unsupported_gpu:
        overrides.append("hardware.allow_unsupported_gpu=true")
    if profile is None and not overrides:
        existing = Path(args.run_dir) if args.run_dir else (None if args.run_id else last_run_dir())
        manifest = existing / "manifest.json" if existing else None
        if manifest and manifest.is_file():
            recorded = read_json(manifest)
            profile, overrides = recorded.get("profile"), recorded.get("overrides", [])
            if args.run_dir is None:
                args.run_dir = str(existing)
    profile = profile or DEFAULT_PROFILE
    cfg = load_config(profile, overrides)
    run_dir = resolve_run_dir(args.run_dir, args.run_id, cfg)
    return Selection(cfg, run_dir, profile, overrides)


def command_line() -> str:
    return "repro " + " ".join(sys.argv[1:])


def say(msg: str) -> None:
    print(msg, flush=True)
