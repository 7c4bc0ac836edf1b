"""Atomic file writes and content hashes: a crash never leaves a half-written output."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from advisor_repro.errors import ResourceError

# a write that fails for want of space (a full disk, a quota, a file-size limit)
NO_SPACE = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`. A full disk
    is a ResourceError naming `path`; the file as it was before stays."""
    path = Path(path)
    point = crash_point("before", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise disk_full(path, exc) from exc
        raise
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        crash_point("mid", path, point)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno in NO_SPACE:
            raise disk_full(path, exc) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    crash_point("after", path, point)


def disk_full(path: Path, exc: OSError) -> ResourceError:
    return ResourceError(
        f"the disk is full: could not write {path} ({exc.strerror or exc}); the files written "
        "before it are kept",
        f"free disk at {path.parent} (or move the run with --run-dir), then rerun the same "
        "command: it continues from what is kept")


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_folder(final: Path, replace: bool = True) -> Iterator[Path]:
    """Build a folder in a temp folder beside `final` (yielded); when the block ends without
    an error, one rename puts it in place of `final` (replace=False: the rename fails with an
    OSError if `final` exists). Whatever happens, no half-built folder is left behind."""
    final = Path(final)
    point = crash_point("before", final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        crash_point("mid", final, point)
        if replace and final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    crash_point("after", final, point)


def remove_stale_temps(root: Path) -> list[str]:
    """Remove the temp files and folders (`.NAME.*.tmp`) that a writer killed before its rename
    left under `root`; returns their relative paths. Only for a caller that holds the run
    directory's lock: then no writer is alive to own them."""
    root = Path(root)
    found = sorted((p for p in root.rglob(".*.tmp") if not p.is_symlink()), reverse=True)
    for p in found:  # deepest first, so a temp folder's own temp entries go before it
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return [p.relative_to(root).as_posix() for p in sorted(found)]


def canonical_json(obj: Any) -> str:
    """Stable JSON text: sorted keys, no spaces, so equal objects hash equal."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_jsonl(path: Path, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(canonical_json(r) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[Any]:
    """Read JSON lines; a line that does not parse is an error naming file and line."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
    return rows


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, keyed by its relative POSIX path (sorted)."""
    root = Path(root)
    if root.is_file():
        return {root.name: sha256_file(root)}
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".tmp")
    }


# ---- crash points: where the crash sweep (tests/reliability/sweep.py) stops a replay ----------
# A test instrument, not configuration, hence read here once at import rather than into the
# Config: the training process inherits it with the rest of the environment. Unset (always,
# outside the sweep), a write pays one comparison.
CRASH_POINTS_ENV = "ADVISOR_REPRO_CRASH_POINTS"
_CRASH_DIR = os.environ.get(CRASH_POINTS_ENV) or None
CRASH_PHASES = ("before", "mid", "after")  # nothing on disk / temp written, not renamed / renamed
CRASH_WAIT_S = 600.0  # a held write goes on by itself if the sweep never signals


def crash_point(phase: str, path: Path, index: int | None = None) -> int | None:
    """Number this write and, when it is the sweep's target, hold it until the sweep has sent
    its signal. The folder named by CRASH_POINTS_ENV holds `counter` (writes numbered from 1
    across every process that shares it, under an flock), `trace` (one line per crash point:
    index, phase, pid, path) and, when a kill is wanted, `target` ("INDEX PHASE", or a path
    pattern for INDEX). At the target the process writes `hit` and waits until the sweep
    removes it. Returns the index ("before" assigns it; "mid" and "after" pass it back)."""
    if _CRASH_DIR is None:
        return None
    folder = Path(_CRASH_DIR)
    with open(folder / "counter", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        if index is None:
            fh.seek(0)
            index = int(fh.read().strip() or 0) + 1
            fh.seek(0)
            fh.truncate()
            fh.write(f"{index}\n")
            fh.flush()
        line = f"{index} {phase} {os.getpid()} {path}\n"
        with open(folder / "trace", "a", encoding="utf-8") as trace:
            trace.write(line)
    try:
        what, when = (folder / "target").read_text().split()
    except FileNotFoundError:
        return index
    if when == phase and (what == str(index) or fnmatch.fnmatch(str(path), what)):
        (folder / "target").unlink(missing_ok=True)  # a target stops one write, once
        hit = folder / "hit"
        hit.write_text(line, encoding="utf-8")
        end = time.monotonic() + CRASH_WAIT_S
        while hit.exists() and time.monotonic() < end:
            time.sleep(0.02)
    return index
