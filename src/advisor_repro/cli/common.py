"""Options shared by the commands, and turning them into (Config, run directory)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from advisor_repro import __version__
from advisor_repro.config import Config, load_config
from advisor_repro.errors import ConfigError
from advisor_repro.files import read_json
from advisor_repro.manifest import last_run_dir, resolve_run_dir

# The checkout's default is the CPU smoke replay; the GPU image sets ADVISOR_REPRO_PROFILE=paper
# so that `docker run --gpus all advisor-repro all` replays the paper (Dockerfile).
DEFAULT_PROFILE = os.environ.get("ADVISOR_REPRO_PROFILE") or "smoke"


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
    """Profile and overrides for the command. An existing run directory (--run-dir, else
    runs/latest when no --run-id is given) is continued with its recorded profile, and its
    recorded overrides with the command's --set values on top. The rule for a run directory
    written by something else: another profile is refused (its records would be judged
    against other settings); another package version is continued, and said, since every
    stage's record hashes decide what is still current."""
    profile, overrides = args.profile, list(args.overrides)
    if args.allow_unsupported_gpu:
        overrides.append("hardware.allow_unsupported_gpu=true")
    if profile is None:
        existing = Path(args.run_dir) if args.run_dir else (
            None if args.run_id else last_run_dir())
        recorded = _manifest(existing)
        if recorded:
            profile = recorded.get("profile")
            overrides = [*recorded.get("overrides", []), *overrides]
            if args.run_dir is None and args.run_id is None:
                args.run_dir = str(existing)
    cfg = load_config(profile or DEFAULT_PROFILE, overrides)
    run_dir = resolve_run_dir(args.run_dir, args.run_id, cfg)
    recorded = _manifest(run_dir)
    if recorded:
        was = recorded.get("profile")
        if args.profile is not None and was and args.profile != was:
            raise ConfigError(
                f"{run_dir} was made with profile '{was}'; this command asks for "
                f"'{args.profile}'",
                f"drop --profile to continue it with '{was}' (--set changes single values), "
                f"or give another --run-dir for a '{args.profile}' run")
        _say_version(run_dir, recorded.get("version"))
    return Selection(cfg, run_dir, profile or DEFAULT_PROFILE, overrides)


def _manifest(run_dir: Path | None) -> dict | None:
    path = run_dir / "manifest.json" if run_dir else None
    return read_json(path) if path and path.is_file() else None


def _say_version(run_dir: Path, version: str | None) -> None:
    if version and version != __version__:
        print(f"note: {run_dir} was written by advisor-repro {version}, this is {__version__}: "
              "continued; stages whose recorded hashes still match are kept, the others rerun",
              file=sys.stderr, flush=True)


def command_line() -> str:
    return "repro " + " ".join(sys.argv[1:])


def say(msg: str) -> None:
    print(msg, flush=True)
