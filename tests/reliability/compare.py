"""Is a replay the same as the uninterrupted one? (the crash sweep's yardstick, sweep.py)

Every stage `done`, verify's table equal, nothing left behind (temp files, a held lock, the
marker of an interrupted stage), the same files, and each file byte-identical but for the
fields named below, each named for why it may differ. Where a file holds the run directory's
own path, that path is compared as `<run>`.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from advisor_repro import pipeline
from advisor_repro.config import load_config
from advisor_repro.files import read_json

# The fields by file: an fnmatch pattern of the path in the run directory (in a .jsonl file the
# fields of every row); `a.b` is a nested key, `*` every item of a list, `name=disk` the items
# of a list whose `name` is "disk". Everything else is compared byte for byte.
SUMMARIES = ("train-?/summary.json", "control/summary.json")
ASKING = ("judge/summary.json", "audit/summary.json", "audit-training/summary.json")

# Wall-clock times, durations and the throughputs and projections computed from them:
TIME_FIELDS: dict[str, tuple[str, ...]] = {
    "*/done.json": ("seconds", "finished", "figures.tok/s"),
    "manifest.json": ("invocations.*.time",),
    "preflight/report.json": ("kernel_checks.*.seconds",),
    "train-?/steps.jsonl": ("elapsed",),
    "control/steps.jsonl": ("elapsed",),
    **dict.fromkeys(SUMMARIES, ("process_seconds", "train_seconds", "tokens_per_s",
                                "session.projected_hours")),
    "*/checkpoints/checkpoint-*/trainer_state.json": (
        "log_history.*.train_runtime", "log_history.*.train_tokens_per_second"),
    "handoff/bundle/handoff.json": ("created",),
    "handoff/verified.json": ("seconds",),
    "generate/answers.jsonl": ("seconds",),
    "generate/summary.json": ("per_model_this_run",),
    "*/cache/*.json": ("time",),
    **dict.fromkeys(ASKING, ("asking.seconds", "asking.grammar_seconds")),
}
# Measurements of the machine at the time (memory in use, free disk):
MEASURED_FIELDS: dict[str, tuple[str, ...]] = {
    "preflight/report.json": ("device.free_disk_bytes", "decision.checks.name=disk.detail"),
    "train-?/steps.jsonl": ("mem",),
    "control/steps.jsonl": ("mem",),
    **dict.fromkeys(SUMMARIES, ("memory_peak",)),
    **dict.fromkeys(ASKING, ("asking.peak_reserved_gib",)),  # the local judge on a GPU
}
# The run's own account of its history, which a resumed run gives by design: the commands run
# on the directory, the checkpoint resumed from, the answers kept, the judge's questions asked
# this run (the rest came from its cache) and in which batches.
RESUME_FIELDS: dict[str, tuple[str, ...]] = {
    "manifest.json": ("invocations",),
    **dict.fromkeys(SUMMARIES, ("resumed_from",)),
    "generate/summary.json": ("resumed_answers", "generated_this_run", "dropped_partial_bytes"),
    "generate/done.json": ("figures.resumed", "figures.generated"),  # as generated_this_run
    **dict.fromkeys(ASKING, ("calls", "asking.batch_sizes")),
    # TRL's own token counter restarts at 0 in a resumed process (it is not in the checkpoint);
    # crash-resume state the package never reads (the step log counts num_input_tokens_seen,
    # which the checkpoint restores)
    "*/checkpoints/checkpoint-*/trainer_state.json": ("log_history.*.num_tokens",),
}
# sha256 of handoff.json, whose `created` time is named above:
HASH_FIELDS: dict[str, tuple[str, ...]] = {
    "handoff/verified.json": ("handoff_json_sha256",),
    "train-2/summary.json": ("started_from.handoff_json_sha256",),
}
TABLES = (TIME_FIELDS, MEASURED_FIELDS, RESUME_FIELDS, HASH_FIELDS)

# The report renders the summaries: its text is compared with the same fields masked, and the
# durations and memory of its phase table. The memory plot draws the measured memory.
_KEYS = ("rss_gib|rss_peak_gib|process_seconds|projected_hours|tokens_per_s|train_seconds|"
         "grammar_seconds|seconds|elapsed|finished|time|created|resumed_from|resumed_answers|"
         "generated_this_run|dropped_partial_bytes|paid|cached|handoff_json_sha256")
REPORT_MASKS = (
    rf'(&quot;|")({_KEYS})(&quot;|"): [^,\n<]*',
    r'(&quot;|")batch_sizes(&quot;|"): \[[^\]]*\]',
    r"\b\d+h\d\dm\d\ds\b",  # a wall-clock duration
    r"[\d.]+ GiB \(CPU process RSS\)",  # the report states memory in GiB
    r"rss( peak)? \(CPU process\) [\d.]+ GiB",
    r"data:image/png;base64,[A-Za-z0-9+/=]+",  # the memory plot, inlined
)
REPORT_FILES = ("report/report.md", "report/report.html")
MEASURED_FILES = ("report/figures/memory.png",)


def compare(run: Path, ref: Path, args: list[str], ran_at: Path | None = None) -> list[str]:
    """Every difference from the reference, as sentences; [] when the replay is the same.
    `ran_at`: where the replay ran, when it has been moved since."""
    problems = leftovers(run)
    problems += [f"stage {s}: {st}" for s, st in states(run, args).items() if st != "done"]
    if verify_table(run) != verify_table(ref):
        problems.append("verify's table differs from the reference's")
    ours, theirs = files(run), files(ref)
    problems += [f"missing: {p}" for p in sorted(set(theirs) - set(ours))]
    problems += [f"extra: {p}" for p in sorted(set(ours) - set(theirs))]
    for rel in sorted(set(ours) & set(theirs)):
        a, b = _content(run / rel, ran_at or run), _content(ref / rel, ref)
        if a != b and rel not in MEASURED_FILES and normalised(rel, a) != normalised(rel, b):
            problems.append(f"differs: {rel}")
    return problems


def _content(path: Path, run: Path) -> bytes | dict[str, bytes]:
    """The file's bytes with the run directory's path written `<run>`; a zip (torch.save's
    training_args.bin in a checkpoint holds the path in its pickle, under the zip's CRC) as
    its members' bytes so treated, but for torch's `serialization_id`: a hash of the pickle
    as written, path included (the pickle itself is compared)."""
    data = path.read_bytes()
    if data.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return {n: z.read(n).replace(str(run).encode(), b"<run>") for n in z.namelist()
                    if not n.endswith("/.data/serialization_id")}
    return data.replace(str(run).encode(), b"<run>")


def leftovers(run: Path) -> list[str]:
    """Temp files and folders of the atomic writers, a held lock, interrupted-stage markers."""
    found = [f"temporary: {p.relative_to(run)}" for p in run.rglob(".*.tmp")]
    found += [f"temporary: {p.relative_to(run)}" for p in run.rglob("*.tmp.json")]
    found += [f"left: {p.relative_to(run)}" for p in run.rglob(pipeline.STARTED)]
    found += [f"left: {p.relative_to(run)}" for p in run.rglob(pipeline.FAILED)]
    lock = run / ".lock"
    if lock.is_file() and lock.read_text().strip():
        found.append(f"lock still names pid {lock.read_text().strip()}")
    return found


def files(run: Path) -> list[str]:
    return sorted(p.relative_to(run).as_posix() for p in run.rglob("*")
                  if p.is_file() and p.name != ".lock")


def named_fields(rel: str) -> tuple[str, ...]:
    """The fields the tables name for this file."""
    return tuple(f for table in TABLES for pattern, fields in table.items()
                 if fnmatch(rel, pattern) for f in fields)


def _holds_named(rel: str) -> bool:
    """A file, or a folder holding a file, with named fields (a stage record hashes both)."""
    return (bool(named_fields(rel)) or rel in REPORT_FILES + MEASURED_FILES
            or any(p.startswith(rel + "/") for t in TABLES for p in t))


def normalised(rel: str, data: bytes | dict[str, bytes]) -> Any:
    """The file's content without its named fields (its bytes when it has none). A stage
    record also drops the sha256 of each file that has named fields: that hash changes with
    them (the file itself is compared without them)."""
    if isinstance(data, dict):  # a zip's members, compared as they are
        return data
    if rel in REPORT_FILES:
        text = data.decode("utf-8")
        for mask in REPORT_MASKS:
            text = re.sub(mask, "<named>", text)
        return text
    fields = named_fields(rel)
    if not fields:
        return data
    if rel.endswith(".jsonl"):
        return [_drop(json.loads(line), fields) for line in data.decode().splitlines()]
    obj = _drop(json.loads(data), fields)
    if rel.endswith("/" + pipeline.RECORD):
        stage = rel.split("/")[0]
        obj["outputs"] = {k: v for k, v in obj.get("outputs", {}).items()
                          if not _holds_named(f"{stage}/{k}")}
        inputs = obj.setdefault("inputs", {})
        inputs["files"] = {k: "(holds named fields)" if _holds_named(k) else v
                           for k, v in inputs.get("files", {}).items()}
    return obj


def _drop(obj: Any, fields: tuple[str, ...]) -> Any:
    for field in fields:
        _drop_one(obj, field.split("."))
    return obj


def _drop_one(obj: Any, steps: list[str]) -> None:
    head, rest = steps[0], steps[1:]
    if isinstance(obj, list) and (head == "*" or "=" in head):
        key, _, value = head.partition("=")
        for item in obj:
            if rest and (head == "*" or (isinstance(item, dict) and str(item.get(key)) == value)):
                _drop_one(item, rest)
    elif isinstance(obj, dict) and head in obj:
        if rest:
            _drop_one(obj[head], rest)
        else:
            del obj[head]


def states(run: Path, args: list[str]) -> dict[str, str]:
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    cfg = load_config("smoke", sets)
    return {s.name: pipeline.stage_state(s, cfg, run).state for s in pipeline.stages()}


def verify_table(run: Path) -> list[tuple]:
    try:
        checks = read_json(run / "verify/verify.json")["checks"]
    except (OSError, ValueError, KeyError):
        return []
    return [(c["id"], c["status"], c["value"]) for c in checks]
