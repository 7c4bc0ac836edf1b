"""The crash sweep: a replay killed at any point resumes to exactly the uninterrupted result.

  nox -s sweep -- --kills 50 --terms 10 --out sweep-out     # the full sweep (hours on 2 cores)
  PYTHONPATH=tests python -m reliability.sweep --kills 4 --terms 2 --out /tmp/sweep

One uninterrupted `repro all` (the reference) numbers every write the package makes through
its atomic-write helpers (`files.crash_point`, three phases each: before, mid = the temp file
written but not renamed, after) and gives the replay's length in seconds. A seeded schedule
then draws the kill points: half at a write (index and phase), half at a time. Each point is
one fresh replay: `repro all` stopped there (SIGKILL to the whole process group, or SIGTERM to
`repro` alone as `docker stop` sends it), then the same command again until it exits 0.
`compare.compare` then asks for every stage `done`, verify's table equal, every file
byte-identical to the reference's but for the fields compare.py names, and nothing left
behind. Results go to `OUT/results.jsonl`, one line per point as it finishes, so a sweep cut
short keeps its points.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from advisor_repro.files import CRASH_PHASES, CRASH_POINTS_ENV

from .compare import compare
from .conftest import SHRINK, env, repro_cmd

RESUMES = 3  # a replay that has not finished after this many reruns of the command failed
REPLAY_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class KillPoint:
    """Where one replay is stopped: at write `write` (files.crash_point's numbering, from 1)
    in `phase`, or when `write` is 0, `seconds` after `repro all` started."""

    signal: str  # KILL: kill -9 of repro's process group; TERM: SIGTERM to repro alone
    write: int = 0
    phase: str = ""
    seconds: float = 0.0
    path: str = ""  # instead of `write`: the first write whose path matches this pattern

    def label(self) -> str:
        if self.write or self.path:
            where = f"write {self.write or self.path} {self.phase}"
        else:
            where = f"{self.seconds:.1f} s"
        return f"SIG{self.signal} at {where}"

    def target(self) -> str | None:
        """What files.crash_point reads from `target` (None: a point in time)."""
        return f"{self.write or self.path} {self.phase}\n" if self.write or self.path else None


@dataclass
class Reference:
    run: Path  # the finished uninterrupted run
    seconds: float  # its wall time
    trace: list[tuple[int, str, str]]  # (write index, phase, path relative to the run dir)

    @property
    def writes(self) -> int:
        return max((i for i, _, _ in self.trace), default=0)

    def path_of(self, write: int) -> str:
        return next((p for i, _, p in self.trace if i == write), "?")


def profile_args(shrink: bool = True) -> list[str]:
    return ["--profile", "smoke", *[a for s in (SHRINK if shrink else ()) for a in ("--set", s)]]


def schedule(seed: int, kills: int, terms: int, writes: int, seconds: float) -> list[KillPoint]:
    """The seeded kill points: for each signal, even draws at a write, odd ones at a time."""
    rng = random.Random(seed)
    points = []
    for sig, n in (("KILL", kills), ("TERM", terms)):
        for i in range(n):
            if i % 2 == 0:
                points.append(KillPoint(sig, rng.randint(1, writes), rng.choice(CRASH_PHASES)))
            else:
                points.append(KillPoint(sig, seconds=round(rng.uniform(1.0, seconds), 1)))
    return points


def interleaved(points: list[KillPoint]) -> list[KillPoint]:
    """The schedule in the order it is run: each signal's points spread evenly through the
    sweep, so one cut short has SIGTERM points too."""
    by_signal: dict[str, list[KillPoint]] = {}
    for p in points:
        by_signal.setdefault(p.signal, []).append(p)
    return [p for _, _, p in sorted((i / len(group), n, p) for n, group in
                                    enumerate(by_signal.values()) for i, p in enumerate(group))]


def chains(points: list[KillPoint], ref: Reference, k: int) -> list[list[KillPoint]]:
    """The schedule as replays of `k` points each (`--chain K`): consecutive points of the
    interleaved schedule, ordered by where they fall in the reference (a write's index over
    the writes, a time over the reference's seconds). A resumed run numbers its writes anew, so
    a write point names the path the reference wrote at that index (the first write matching
    it, in that phase); a time point is the seconds after the previous point, measured from
    the start of the command it stops."""
    if k <= 1:
        return [[p] for p in points]

    def position(p: KillPoint) -> float:
        return p.write / max(1, ref.writes) if p.write else p.seconds / max(1.0, ref.seconds)

    out = []
    for i in range(0, len(points), k):
        chain, before = [], 0.0
        for p in sorted(points[i : i + k], key=position):
            if p.write:
                where = os.path.normpath(ref.run / ref.path_of(p.write))
                chain.append(KillPoint(p.signal, path=glob.escape(where).replace(
                    str(ref.run), "*"), phase=p.phase))
            else:
                gap = (position(p) - before) * ref.seconds
                chain.append(KillPoint(p.signal, seconds=round(max(1.0, gap), 1)))
            before = position(p)
        out.append(chain)
    return out


# ---- running repro ---------------------------------------------------------------------------
def start(args: list[str], log: Path, crash_dir: Path | None) -> subprocess.Popen:
    extra = {CRASH_POINTS_ENV: str(crash_dir)} if crash_dir else {}
    fh = open(log, "ab")  # noqa: SIM115 - closed by finish
    fh.write(f"\n$ repro {' '.join(args)}\n".encode())
    fh.flush()
    proc = subprocess.Popen(repro_cmd(*args), stdout=fh, stderr=subprocess.STDOUT,
                            env={**env(), **extra}, cwd=log.parent, start_new_session=True)
    proc.log_handle = fh  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen, timeout: float = REPLAY_TIMEOUT_S) -> int:
    try:
        return proc.wait(timeout=timeout)
    finally:
        proc.log_handle.close()  # type: ignore[attr-defined]


def run_reference(work: Path, args: list[str]) -> Reference:
    """`repro all` uninterrupted at WORK/ref/run, its writes traced in WORK/reference-crash.
    The replays run at WORK/rep/run: the same name (the report's title holds it) and a path
    of the same length (a pickled path in a checkpoint is length-prefixed)."""
    ref, crash = work / "ref" / "run", work / "reference-crash"
    shutil.rmtree(ref, ignore_errors=True)
    shutil.rmtree(crash, ignore_errors=True)
    crash.mkdir(parents=True)
    t0 = time.monotonic()
    rc = finish(start(["all", *args, "--run-dir", str(ref)], work / "reference.log", crash))
    seconds = time.monotonic() - t0
    if rc != 0:
        raise RuntimeError(f"the reference replay exited {rc}: see {work / 'reference.log'}")
    trace = read_trace(crash / "trace", ref)
    write_json_file(work / "reference.json", {"seconds": seconds, "writes": len(trace)})
    return Reference(ref, seconds, trace)


def read_trace(path: Path, run: Path) -> list[tuple[int, str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        index, phase, _pid, where = line.split(" ", 3)
        rows.append((int(index), phase, os.path.relpath(where, run)))
    return rows


def load_reference(work: Path) -> Reference:
    meta = json.loads((work / "reference.json").read_text())
    trace = read_trace(work / "reference-crash" / "trace", work / "ref" / "run")
    return Reference(work / "ref" / "run", meta["seconds"], trace)


def write_json_file(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def stop_at(point: KillPoint, args: list[str], run: Path, folder: Path) -> dict[str, Any]:
    """Start `repro all`, stop it at `point`; returns where it landed and its exit code."""
    crash = folder / "crash"
    shutil.rmtree(crash, ignore_errors=True)
    crash.mkdir(parents=True)
    target = point.target()
    if target:
        (crash / "target").write_text(target)
    proc = start(["all", *args, "--run-dir", str(run)], folder / "repro.log", crash)
    t0, hit = time.monotonic(), crash / "hit"
    landed = None
    while proc.poll() is None and time.monotonic() - t0 < REPLAY_TIMEOUT_S:
        if target and hit.exists():
            landed = os.path.relpath(hit.read_text().split(" ", 3)[3].strip(), run)
        elif not target and time.monotonic() - t0 >= point.seconds:
            landed = f"{time.monotonic() - t0:.1f} s"
        if landed is not None:
            _signal(proc, point.signal)
            hit.unlink(missing_ok=True)  # a SIGTERM'd process goes on from the held write
            break
        time.sleep(0.02)
    return {"landed": landed, "rc": finish(proc)}


def _signal(proc: subprocess.Popen, name: str) -> None:
    try:
        if name == "KILL":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass


def replay(points: list[KillPoint], ref: Reference, args: list[str], run: Path,
           folder: Path) -> dict[str, Any]:
    """Stop `repro all` on a fresh `run` at each of `points` in turn (each in the next run of
    the command), then run it until it exits 0, and compare with the reference. Logs and the
    crash-point folders go to `folder`."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.monotonic()
    stops = [stop_at(point, args, run, folder) for point in points]
    resumes: list[int] = []
    while len(resumes) < RESUMES and (not resumes or resumes[-1] != 0):
        resumes.append(finish(start(["all", *args, "--run-dir", str(run)],
                                      folder / "repro.log", None)))
    outcome = {"point": "; ".join(p.label() for p in points),
               "points": [asdict(p) for p in points], "stops": stops, "resumes": resumes}
    if resumes[-1] != 0:
        outcome["problems"] = [f"the command never finished: exit codes {resumes}"]
    else:
        try:
            outcome["problems"] = compare(run, ref.run, args)
        except (OSError, ValueError) as exc:  # e.g. a torn JSON file the reference does not have
            outcome["problems"] = [f"could not compare: {exc}"]
    outcome["seconds"] = round(time.monotonic() - t0, 1)
    return outcome


# ---- the command -----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50, help="SIGKILL points (default 50)")
    parser.add_argument("--terms", type=int, default=10, help="SIGTERM points (default 10)")
    parser.add_argument("--seed", type=int, default=29, help="the schedule's seed")
    parser.add_argument("--out", type=Path, default=Path("sweep-out"),
                        help="work folder: reference, results.jsonl, failing replays")
    parser.add_argument("--full-smoke", action="store_true",
                        help="the smoke profile as it is (default: shrunk as the tests run it)")
    parser.add_argument("--reuse-reference", action="store_true",
                        help="keep OUT/reference from an earlier sweep of the same profile")
    parser.add_argument("--recompare", action="store_true",
                        help="compare the kept replays (OUT/points/*/run) again, run nothing")
    parser.add_argument("--chain", type=int, default=1, metavar="K",
                        help="K points in each replay, one after another, compared at its end "
                             "(default 1: a fresh replay per point; see chains())")
    opts = parser.parse_args(argv)
    work = opts.out.resolve()
    work.mkdir(parents=True, exist_ok=True)
    args = profile_args(shrink=not opts.full_smoke)
    if opts.recompare:
        return recompare(work, args)
    if opts.reuse_reference and (work / "reference.json").is_file():
        ref = load_reference(work)
    else:
        ref = run_reference(work, args)
    print(f"reference: {ref.writes} writes, {ref.seconds:.0f} s", flush=True)
    points = interleaved(schedule(opts.seed, opts.kills, opts.terms, ref.writes, ref.seconds))
    groups = chains(points, ref, opts.chain)
    done = {json.loads(line)["point"] for line in _lines(work / "results.jsonl")}
    failed = 0
    for n, group in enumerate(groups, start=1):
        label = "; ".join(p.label() for p in group)
        if label in done:
            continue
        folder = work / "points" / f"{n:03d}"
        outcome = replay(group, ref, args, work / "rep" / "run", folder)
        outcome["folder"] = folder.relative_to(work).as_posix()
        if outcome["problems"]:  # kept for a look; an identical one is not needed again
            shutil.move(work / "rep" / "run", folder / "run")
        if len(group) == 1 and group[0].write:
            outcome["write_path"] = ref.path_of(group[0].write)
        with open(work / "results.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(outcome, sort_keys=True) + "\n")
        failed += bool(outcome["problems"])
        # a time past the end of a replay that ran faster than the reference stops nothing
        where = ", ".join(f"{s['landed'] or 'nowhere (the command ended first)'} rc {s['rc']}"
                          for s in outcome["stops"])
        print(f"[{n}/{len(groups)}] {label}: landed {where}; resumes {outcome['resumes']} "
              f"{outcome['seconds']} s: {outcome['problems'] or 'identical'}", flush=True)
    print(tally(work), flush=True)
    return 1 if failed else 0


def recompare(work: Path, args: list[str]) -> int:
    """results.jsonl again, each kept replay compared anew (after a fix to the comparison);
    the earlier file is kept as results.jsonl.before."""
    results = work / "results.jsonl"
    rows = [json.loads(line) for line in _lines(results)]
    for row in rows:
        run = work / row["folder"] / "run"
        if row["problems"] and run.is_dir():
            row["problems"] = compare(run, work / "ref" / "run", args, work / "rep" / "run")
    shutil.copyfile(results, results.with_suffix(".jsonl.before"))
    results.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    bad = [r for r in rows if r["problems"]]
    print(f"{len(rows)} replays, {len(bad)} with differences; {tally(work)}", flush=True)
    return 1 if bad else 0


def tally(work: Path) -> str:
    """One line on results.jsonl: points run, landed, identical, by signal."""
    rows = [json.loads(line) for line in _lines(work / "results.jsonl")]
    parts = []
    for sig in ("KILL", "TERM"):  # each point of each replay (a chain holds several)
        mine = [(p, stop, r) for r in rows for p, stop in zip(r["points"], r["stops"], strict=True)
                if p["signal"] == sig]
        landed = [m for m in mine if m[1]["landed"]]
        same = [m for m in landed if not m[2]["problems"]]
        parts.append(f"SIG{sig}: {len(mine)} run, {len(landed)} landed, {len(same)} in a "
                     "replay identical to the reference")
    return f"{len(rows)} replays; " + "; ".join(parts)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


if __name__ == "__main__":
    sys.exit(main())
