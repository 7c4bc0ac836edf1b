"""The runner: the registry over a run directory, completion records and skip-if-done.

A stage reads only the files it declares (`needs`) and writes only its own folder. When it
finishes, `<stage>/done.json` records the hashes of its inputs (config slices, declared files,
external inputs) and of its outputs; a rerun skips it while all of them still match. A stage
killed half-way leaves `started.json` but no `done.json`: the rerun resumes inside the same
folder when the inputs are unchanged, and starts clean when they changed.

Nothing computed is lost to a stage that cannot run: `precheck` (declared inputs present, the
folder and the caches it would write into writable, disk for the stage's estimate, the stage's
own `check`) runs before the first byte is written, so a refusal leaves the run directory as it
was. A folder holding `imported.json` (`repro import-release`) is `imported`: finished, never
rerun unless forced.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from advisor_repro.config import Config
from advisor_repro.errors import (
    BusyError,
    ConfigError,
    ReproError,
    ResourceError,
    StageInputError,
    UnwritableError,
)
from advisor_repro.files import (
    canonical_json,
    hash_tree,
    read_json,
    remove_stale_temps,
    sha256_file,
    sha256_text,
    write_json,
)
from advisor_repro.hardware.gpu import GIB
from advisor_repro.stages.contract import Figure, Stage, StageContext, StageResult

RECORD = "done.json"
STARTED = "started.json"
FAILED = "failed.json"
IMPORTED = "imported.json"  # written by `repro import-release`: the source files and sha256
# Not outputs: bookkeeping, crash-resume state and caches do not make a stage "changed".
TRANSIENT = (RECORD, STARTED, FAILED, IMPORTED, "checkpoints/", "cache/", "partial/")


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
class InputFingerprint(TypedDict):
    """What a stage's result depends on, as started.json and done.json record it."""

    config: str | None  # hash of the config sections the stage declares
    files: dict[str, str | None]  # declared input -> sha256 ("tree:..." for a folder)
    external: dict[str, str]  # inputs outside the run directory (Stage.external)


class SourceFile(TypedDict):
    """A released file an import read (release/): its kind, name and sha256."""

    kind: str  # prompts | outputs:base | outputs:ft | judge | bertscore
    file: str
    sha256: str


class ImportedRecord(TypedDict, total=False):
    """<stage>/imported.json: the released files, the hashes of what was written from them, and
    what the importer adds (which release, which answers)."""

    files: list[SourceFile]
    outputs: dict[str, str]


class DoneRecord(TypedDict, total=False):
    """<stage>/done.json, the completion record (an imported stage's also names `imported`)."""

    stage: str
    seconds: float
    finished: float  # time.time()
    inputs: InputFingerprint
    outputs: dict[str, str]  # file -> sha256, what the stage wrote
    figures: dict[str, Figure]  # StageResult.figures
    warnings: list[str]
    imported: dict[str, Any]  # the importer's account of what it wrote


def input_fingerprint(stage: Stage, cfg: Config, run_dir: Path) -> InputFingerprint:
    """Everything that, when changed, makes the stage's result stale."""
    files: dict[str, str | None] = {}
    for rel in (*stage.needs, *stage.optional):
        p = run_dir / rel
        if p.is_dir():  # a declared folder (e.g. an adapter bundle) hashes as a whole
            files[rel] = "tree:" + sha256_text(canonical_json(hash_tree(p)))
        else:
            files[rel] = sha256_file(p) if p.is_file() else None
    return InputFingerprint(
        config=cfg.section_hash(*stage.config) if stage.config else None,
        files=files,
        external=stage.external(cfg) if stage.external else {},
    )


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
    state: str  # done | imported | stale | partial | paused | failed | pending
    reason: str = ""
    record: DoneRecord | None = None
    sources: list[SourceFile] | None = None  # imported: the released files and sha256


def imported_record(folder: Path) -> ImportedRecord | None:
    """<stage>/imported.json (the released files and the hashes of what was written from
    them), or None when the stage was not imported. An unreadable one still marks it."""
    try:
        return read_json(folder / IMPORTED)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"files": [{"kind": "?", "file": f"{IMPORTED} (unreadable)", "sha256": "?"}]}


def imported_sources(folder: Path) -> list[SourceFile] | None:
    """The released files a stage folder was imported from, or None when it was not."""
    rec = imported_record(folder)
    return None if rec is None else list(rec.get("files", []))


def describe_sources(sources: list[SourceFile]) -> str:
    return ", ".join(f"{f.get('file')} sha256 {str(f.get('sha256'))[:12]}" for f in sources)


def stage_state(stage: Stage, cfg: Config, run_dir: Path) -> StageState:
    folder = run_dir / stage.name
    record_path = folder / RECORD
    imported = imported_record(folder)
    if imported is not None:  # finished elsewhere (the paper's release): never stale by hashes
        try:
            record = read_json(record_path) if record_path.is_file() else None
        except ValueError:
            record = None
        sources = list(imported.get("files", []))
        reason = "from " + (describe_sources(sources) or "the paper's release")
        kept = imported.get("outputs")
        if kept is not None and output_hashes(folder) != kept:
            reason += "; files differ from the import (repro import-release --force restores)"
        return StageState(stage.name, "imported", reason, record, sources)
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
        # (nor is one stopped by SIGTERM with a checkpoint: Terminated)
        state = "paused" if failed.get("type") in ("SessionLimitReached", "Terminated") \
            else "failed"
        return StageState(stage.name, state, failed.get("error", ""))
    if (folder / STARTED).is_file():
        return StageState(stage.name, "partial", "interrupted; a rerun resumes it")
    return StageState(stage.name, "pending")


def _changed_inputs(old: InputFingerprint, new: InputFingerprint) -> list[str]:
    """What differs between a record's inputs (possibly partial, from an older record) and now."""
    changed = []
    if old.get("config") != new["config"]:
        changed.append("config")
    for rel in sorted(set(old.get("files", {})) | set(new["files"])):
        if old.get("files", {}).get(rel) != new["files"].get(rel):
            changed.append(rel)
    if old.get("external") != new["external"]:
        changed.append("external inputs")
    return changed


# ---- checks before the first write ------------------------------------------------------------
def precheck(stage: Stage, cfg: Config, run_dir: Path) -> None:
    """Everything a stage needs, checked before its folder is touched: declared inputs, a
    writable folder, writable caches (those it would write into), free disk for its estimate,
    and the stage's own check (config, backend). Raises the ReproError that names the problem;
    writes nothing."""
    missing = [rel for rel in stage.needs if not (run_dir / rel).exists()]
    if missing:
        raise missing_input_error(stage, run_dir, missing)
    check_writable(run_dir / stage.name if (run_dir / stage.name).is_dir() else run_dir)
    for variable, cache in (stage.caches(cfg) if stage.caches else {}).items():
        check_cache_writable(stage, variable, cache)
    need = stage.estimate(cfg).disk_bytes if stage.estimate else 0
    free = shutil.disk_usage(run_dir).free
    if need > free:
        raise ResourceError(
            f"not enough disk for stage '{stage.name}' at {run_dir}: it writes about "
            f"{need / GIB:.2f} GiB, {free / GIB:.2f} GiB are free; nothing was changed",
            "free disk there, or put the run elsewhere with --run-dir")
    if stage.check:
        stage.check(cfg, _context(stage, cfg, run_dir))


def missing_input_error(stage: Stage, run_dir: Path, missing: list[str]) -> StageInputError:
    producer = missing[0].split("/", 1)[0]
    problem = (f"stage '{stage.name}' needs {', '.join(missing[:3])}"
               f"{f' (+{len(missing) - 3} more)' if len(missing) > 3 else ''}, missing in "
               f"{run_dir}; nothing was changed")
    if imported_sources(run_dir / producer) is not None:
        fix = (f"{producer}/ holds files imported from the paper's release, which do not include "
               f"{missing[0]}: `repro {producer} --force --run-dir {run_dir}` computes the stage "
               f"(replacing the import), or import into another --run-dir")
    else:
        fix = f"run the earlier stage first: repro {producer} --run-dir {run_dir}"
    return StageInputError(problem, fix)


def check_writable(folder: Path) -> None:
    """A probe file created and removed: catches read-only mounts and permissions (for root
    too, unlike os.access). A missing folder is checked at its nearest existing parent."""
    probe_in, exc = _probe(folder)
    if exc is not None:
        raise unwritable_error(probe_in, exc) from exc


def check_cache_writable(stage: Stage, variable: str, cache: Path) -> None:
    """A cache the stage would write into (`Stage.caches`), probed like the run directory."""
    probe_in, exc = _probe(cache)
    if exc is None:
        return
    if exc.errno in (errno.ENOSPC, errno.EFBIG):
        raise unwritable_error(probe_in, exc) from exc
    where = str(cache) if probe_in == cache else f"{cache} (its nearest existing folder {probe_in})"
    offline = ("; or, if the hub cache already holds everything this stage reads, set "
               "HF_HUB_OFFLINE=1 (then it is only read)") if variable == "HF_HOME" else ""
    raise UnwritableError(
        f"stage '{stage.name}' would write into the cache at {where}, which cannot be written "
        f"({exc.strerror or exc}); nothing was changed",
        f"make it writable (e.g. `chmod u+w {probe_in}`, or remount it read-write), or point "
        f"{variable} at a writable folder{offline}") from exc


def nearest_existing(path: Path) -> Path:
    """`path`, or its nearest parent that exists (what a folder still to be made lands on)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _probe(folder: Path) -> tuple[Path, OSError | None]:
    """(the folder probed: `folder` or its nearest existing parent, the OSError of a probe
    file created and removed there, or None)."""
    probe_in = nearest_existing(folder)
    try:
        fd, tmp = tempfile.mkstemp(dir=probe_in, prefix=".write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return probe_in, exc
    return probe_in, None


def unwritable_error(path: Path, exc: OSError) -> ReproError:
    if exc.errno == errno.ENOSPC or exc.errno == errno.EFBIG:
        return ResourceError(f"the disk is full at {path} ({exc.strerror})",
                             "free disk there (or pick another --run-dir), then rerun the same "
                             "command: finished stages are kept")
    return UnwritableError(
        f"cannot write to {path} ({exc.strerror or exc})",
        f"make it writable (e.g. `chmod u+w {path}`, or remount it read-write), or choose "
        "another place: --run-dir DIR for the run, ADVISOR_REPRO_CACHE / HF_HOME for the caches")


def _context(stage: Stage, cfg: Config, run_dir: Path) -> StageContext:
    return StageContext(stage.name, run_dir, stage.needs, stage.optional, plan_disk_bytes(cfg))


# ---- running --------------------------------------------------------------------------------
@contextlib.contextmanager
def locked(run_dir: Path, log: Callable[[str], None] | None = None) -> Iterator[None]:
    """One `repro` process per run directory: a second one is refused, not interleaved.

    The lock is an flock on `<run>/.lock`, which the kernel drops when its holder dies, so a
    lock left by a killed process is stale by construction: the next `repro` takes it over
    (and says so, from the pid the dead holder left in the file). Never two writers."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable_error(run_dir, exc) from exc
    check_writable(run_dir)
    with open(run_dir / ".lock", "a+") as fh:  # "a+": opening must not wipe the holder's pid
        fh.seek(0)
        left = fh.read().strip()
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = f" (pid {left})" if left else ""
            raise BusyError(
                f"another repro process{holder} is using {run_dir}",
                "wait for it to finish, or pick another --run-dir",
            ) from exc
        if left and log:
            log(f"lock of {run_dir}: taken over from pid {left}, which ended without "
                "releasing it (killed); its finished stages are kept")
        # a writer killed between its temp file and the rename left that temp file behind
        stale = remove_stale_temps(run_dir)
        if stale and log:
            log(f"removed {len(stale)} temporary file(s) left by a killed write: "
                f"{', '.join(stale[:3])}{' ...' if len(stale) > 3 else ''}")
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()  # a clean release leaves an empty lock file
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_stage(
    stage: Stage,
    cfg: Config,
    run_dir: Path,
    force: bool = False,
    log: Callable[[str], None] = print,
    before_write: Callable[[], None] | None = None,
) -> tuple[str, StageResult | None]:
    """Run one stage unless its record is current or it was imported. Returns (what happened:
    "skipped" | "imported" | "ran", result). `before_write` runs once the checks have passed,
    just before the first byte is written (the CLI records the invocation there)."""
    st = stage_state(stage, cfg, run_dir)
    if st.state == "done" and not force:
        # a kill between writing the record and removing started.json leaves both
        (run_dir / stage.name / STARTED).unlink(missing_ok=True)
        log(f"[{stage.name}] up to date, skipped")
        return "skipped", None
    if st.state == "imported" and not force:
        log(f"[{stage.name}] imported ({st.reason}): left as it is; "
            f"`--force {stage.name}` recomputes it, replacing the import")
        return "imported", None
    precheck(stage, cfg, run_dir)
    if before_write:
        before_write()
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
    ctx = _context(stage, cfg, run_dir)
    try:
        result = stage.run(cfg, ctx)
    except ReproError as exc:
        with contextlib.suppress(OSError, ReproError):  # a full disk may refuse this one too
            write_json(folder / FAILED, {"error": exc.problem, "fix": exc.fix,
                                         "type": type(exc).__name__, "time": time.time()})
        raise
    seconds = time.monotonic() - t0
    write_json(
        folder / RECORD,
        DoneRecord(
            stage=stage.name,
            seconds=round(seconds, 3),
            finished=time.time(),
            inputs=fingerprint,
            outputs=output_hashes(folder),
            figures=result.figures,
            warnings=result.warnings,
        ),
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


def _same_start(folder: Path, fingerprint: InputFingerprint) -> bool:
    try:
        return read_json(folder / STARTED).get("inputs") == fingerprint
    except (OSError, ValueError):
        return False
