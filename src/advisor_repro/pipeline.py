"""The runner: the registry over a run directory, completion records and skip-if-done.

A stage reads only the files it declares (`needs`) and writes only its own folder. When it
finishes, `<stage>/done.json` records the hashes of its inputs (config slices, declared files,
external inputs) and of its outputs; a rerun skips it while all of them still match. A stage
killed half-way leaves `started.json` but no `done.json`: the rerun resumes inside the same
folder when the inputs are unchanged, and starts clean when they changed.
"""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor_repro.config import Config
from advisor_repro.errors import BusyError, ConfigError, ReproError
from advisor_repro.files import (
    canonical_json,
    hash_tree,
    read_json,
    sha256_file,
    sha256_text,
    write_json,
)
from advisor_repro.stages.contract import Stage, StageContext, StageResult

RECORD = "done.json"
STARTED = "started.json"
FAILED = "failed.json"
# Not outputs: bookkeeping, crash-resume state and caches do not make a stage "changed".
TRANSIENT = (RECORD, STARTED, FAILED, "checkpoints/", "cache/", "partial/")


def stages() -> list[Stage]:
    """The registered stages, in the paper's order."""
    # Imported here so that `import advisor_repro.pipeline` stays light for the CLI's --help.
    from advisor_repro.stages.registry import STAGES

    return STAGES


def plan_disk_bytes(cfg: Config) -> int:
    """New disk the registered stages will write, from their estimates."""
    return sum(s.estimate(cfg).disk_bytes for s in stages() if s.estimate)


def get_stage(name: str) -> Stage:
    for s in stages():
        if s.name == name:
            return s
    known = ", ".join(s.name for s in stages())
    raise ConfigError(f"no stage named '{name}'", f"stages are: {known}")


# ---- fingerprints ---------------------------------------------------------------------------
def input_fingerprint(stage: Stage, cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Everything that, when changed, makes the stage's result stale."""
    files = {}
    for rel in (*stage.needs, *stage.optional):
        p = run_dir / rel
        if p.is_dir():  # a declared folder (e.g. an adapter bundle) hashes as a whole
            files[rel] = "tree:" + sha256_text(canonical_json(hash_tree(p)))
        else:
            files[rel] = sha256_file(p) if p.is_file() else None
    return {
        "config": cfg.section_hash(*stage.config) if stage.config else None,
        "files": files,
        "external": stage.external(cfg) if stage.external else {},
    }


def output_hashes(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {
        rel: h
        for rel, h in hash_tree(folder).items()
        if not any(rel == t or rel.startswith(t) for t in TRANSIENT) and "/." not in "/" + rel
    }


@dataclass
class StageState:
    name: str
    state: str  # done | stale | partial | paused | failed | pending
    reason: str = ""
    record: dict[str, Any] | None = None


def stage_state(stage: Stage, cfg: Config, run_dir: Path) -> StageState:
    folder = run_dir / stage.name
    record_path = folder / RECORD
    if record_path.is_file():
        try:
            record = read_json(record_path)
        except ValueError:
            return StageState(stage.name, "stale", "completion record is corrupt")
        if any(not (run_dir / rel).exists() for rel in stage.needs):
            return StageState(stage.name, "stale", "an input is missing", record)
        now = input_fingerprint(stage, cfg, run_dir)
        changed = _changed_inputs(record.get("inputs", {}), now)
        if changed:
            return StageState(stage.name, "stale", f"changed: {', '.join(changed)}", record)
        if output_hashes(folder) != record.get("outputs"):
            return StageState(stage.name, "stale", "outputs modified or missing", record)
        return StageState(stage.name, "done", "", record)
    if (folder / FAILED).is_file():
        failed = read_json(folder / FAILED)
        # a training segment paused at its session limit is not broken: the rerun continues it
        state = "paused" if failed.get("type") == "SessionLimitReached" else "failed"
        return StageState(stage.name, state, failed.get("error", ""))
    if (folder / STARTED).is_file():
        return StageState(stage.name, "partial", "interrupted; a rerun resumes it")
    return StageState(stage.name, "pending")


def _changed_inputs(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changed = []
    if old.get("config") != new["config"]:
        changed.append("config")
    for rel in sorted(set(old.get("files", {})) | set(new["files"])):
        if old.get("files", {}).get(rel) != new["files"].get(rel):
            changed.append(rel)
    if old.get("external") != new["external"]:
        changed.append("external inputs")
    return changed


# ---- running --------------------------------------------------------------------------------
@contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """One `repro` process per run directory: a second one is refused, not interleaved."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BusyError(
                f"another repro process is using {run_dir}",
                "wait for it to finish, or pick another --run-dir",
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_stage(
    stage: Stage,
    cfg: Config,
    run_dir: Path,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> tuple[str, StageResult | None]:
    """Run one stage unless its record is current. Returns (what happened, result)."""
    st = stage_state(stage, cfg, run_dir)
    if st.state == "done" and not force:
        log(f"[{stage.name}] up to date, skipped")
        return "skipped", None
    folder = run_dir / stage.name
    fingerprint = input_fingerprint(stage, cfg, run_dir)
    resumable = (st.state in ("partial", "paused", "failed") and _same_start(folder, fingerprint)
                 and not force)
    if folder.exists() and not resumable:
        _clear_keeping_cache(folder)  # stale or forced: no old result may leak through
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FAILED).unlink(missing_ok=True)
    write_json(folder / STARTED, {"inputs": fingerprint, "time": time.time()})
    log(f"[{stage.name}] {'resuming' if resumable else 'running'}: {stage.summary}")
    t0 = time.monotonic()
    ctx = StageContext(stage.name, run_dir, stage.needs, stage.optional, plan_disk_bytes(cfg))
    try:
        result = stage.run(cfg, ctx)
    except ReproError as exc:
        write_json(folder / FAILED, {"error": exc.problem, "fix": exc.fix,
                                     "type": type(exc).__name__, "time": time.time()})
        raise
    seconds = time.monotonic() - t0
    write_json(
        folder / RECORD,
        {
            "stage": stage.name,
            "seconds": round(seconds, 3),
            "finished": time.time(),
            "inputs": fingerprint,
            "outputs": output_hashes(folder),
            "figures": result.figures,
            "warnings": result.warnings,
        },
    )
    (folder / STARTED).unlink(missing_ok=True)
    for w in result.warnings:
        log(f"[{stage.name}] warning: {w}")
    log(f"[{stage.name}] done in {seconds:.1f} s")
    return "ran", result


def _clear_keeping_cache(folder: Path) -> None:
    """Remove a stage's outputs but keep cache/: its entries are keyed on everything that
    changes an answer (the judge's paid verdicts), so they stay valid when other inputs change."""
    for child in folder.iterdir():
        if child.name == "cache" and child.is_dir():
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _same_start(folder: Path, fingerprint: dict[str, Any]) -> bool:
    try:
        return read_json(folder / STARTED).get("inputs") == fingerprint
    except (OSError, ValueError):
        return False
