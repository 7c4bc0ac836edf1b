"""Everything a multi-stage command (`repro all`) needs, checked before its first stage runs.

A replay of the paper spends hours training before it judges; a judge key that is not set, a
model absent from the cache while offline, a disk too small for the whole plan or a segment
longer than its session must refuse the run at its start, not hours in. `check_plan` asks every
stage that will run for its `prerequisites` (Stage.prerequisites: the stage's own, found from
the config alone: keys, models, a training segment against its session limit), adds what only
the whole plan shows (disk for every stage to run, the caches each would write into), and
raises one error naming every problem with its fix. It reads and probes only: the run
directory and the caches are left as they were.

A stage "will run" when it is not done or imported, when it is forced, or when a stage whose
outputs it reads will run (its record then goes stale).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from advisor_repro.config import Config
from advisor_repro.errors import PrerequisitesMissing, ReproError, ResourceError
from advisor_repro.hardware.gpu import GIB
from advisor_repro.pipeline import check_cache_writable, nearest_existing
from advisor_repro.stages.contract import Stage


def stages_to_run(stages: list[Stage], states: dict[str, str], forced: Iterable[str]
                  ) -> list[Stage]:
    """The stages a run over these states will run, in order."""
    forced, running = set(forced), set()
    for s in stages:
        reads = {rel.split("/", 1)[0] for rel in (*s.needs, *s.optional)}
        if s.name in forced or states[s.name] not in ("done", "imported") or reads & running:
            running.add(s.name)
    return [s for s in stages if s.name in running]


def problems(cfg: Config, run_dir: Path, to_run: list[Stage]) -> list[tuple[str, ReproError]]:
    """(the stages a problem stops, the error naming it and its fix) for every problem found,
    identical ones once."""
    found: dict[str, tuple[list[str], ReproError]] = {}

    def add(stage: str, exc: ReproError) -> None:
        names, _ = found.setdefault(exc.message, ([], exc))
        names.append(stage)

    for s in to_run:
        for exc in s.prerequisites(cfg) if s.prerequisites else []:
            add(s.name, exc)
        for exc in _unwritable_caches(s, cfg):
            add(s.name, exc)
    disk = _disk(cfg, run_dir, to_run)
    if disk:
        add("all", disk)
    return [(", ".join(names), exc) for names, exc in found.values()]


def check_plan(cfg: Config, run_dir: Path, to_run: list[Stage]) -> None:
    """Raise when a prerequisite of `to_run` is missing: a single problem as its own error
    (its own exit code), several as one PrerequisitesMissing naming each with its fix."""
    found = problems(cfg, run_dir, to_run)
    if not found:
        return
    if len(found) == 1:
        stage, exc = found[0]
        raise type(exc)(f"{exc.problem} (needed by {stage}; found before any stage ran, "
                        f"nothing was changed)", exc.fix)
    lines = [f"{i}. [{stage}] {exc.problem}\n     fix: {exc.fix}"
             for i, (stage, exc) in enumerate(found, 1)]
    raise PrerequisitesMissing(
        f"{len(found)} prerequisites of this run are missing, found before any stage ran "
        f"(nothing was changed):\n" + "\n".join(lines),
        "fix each one above, then rerun the same command")


def _unwritable_caches(stage: Stage, cfg: Config) -> list[ReproError]:
    out = []
    for variable, cache in (stage.caches(cfg) if stage.caches else {}).items():
        try:
            check_cache_writable(stage, variable, cache)
        except ReproError as exc:
            out.append(exc)
    return out


def _disk(cfg: Config, run_dir: Path, to_run: list[Stage]) -> ReproError | None:
    need = sum(s.estimate(cfg).disk_bytes for s in to_run if s.estimate)
    where = nearest_existing(run_dir)
    free = shutil.disk_usage(where).free
    if need <= free:
        return None
    return ResourceError(
        f"not enough disk at {where} for the stages to run: they write about "
        f"{need / GIB:.2f} GiB, {free / GIB:.2f} GiB are free",
        "free disk there, or put the run elsewhere with --run-dir")
