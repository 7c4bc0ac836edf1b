"""Expected ranges: the paper's numbers as checks over a run directory (repro/expected/*.toml).

Pure core of the `verify` stage: load and validate an expected file, read a value out of the
run directory by reference, judge it PASS / FAIL / SKIP. Nothing here writes files.

A reference names a file of the run directory and a key path, with an optional reducer:

    metrics/summary.json:256.bertscore_f1.delta      a key path into a JSON file
    train-1/steps.jsonl:*.loss|first                 every row's `loss`, then the first one
    generate/answers.jsonl:*[model=base,cap=256].truncated|mean
                                                     rows filtered on fields, then the mean

Path parts are dict keys, list indexes (`0`, `-1`) or `*` (every element; `*[k=v,...]` keeps
the rows whose fields equal those values as text). Reducers: first, last, min, max, sum, mean,
count, distinct (number of distinct values), argmin / argmax (index of the minimum / maximum).

An entry (one `[[check]]` table) holds: id, read (a reference, or a list of them with
`combine`), paper (the paper's value, shown), where (section/table of the paper), class
(exact | structural | rerun | budget), reason (why this tolerance), and bounds: `equals` (+
`tol`), `min`, `max` (inclusive), `gt`, `lt` (strict). A bound may itself be a reference (a
string: the check compares two values of the run) or "config:KEY" (a config value).
`when` / `when_not` hold conditions on config values (`judge.backend`) or run values (a
reference), each a value or a list of allowed values; a check whose conditions do not hold is
SKIP with `when_reason` / `when_not_reason`. `required = false` marks a check that is shown but
never fails the verdict. `unit` is shown next to numeric values. A value that is not in the run
(its file absent, its stage unfinished, its key missing) makes the check SKIP with the reason,
never FAIL.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from advisor_repro.config import Config
from advisor_repro.errors import ConfigError
from advisor_repro.files import read_json, read_jsonl

EXPECTED_DIR = Path(__file__).resolve().parents[2] / "repro" / "expected"
CLASSES = {
    "exact": "recomputed from the same data (e.g. the released files): equal to rounding",
    "structural": "a fact of the recipe or the data that must hold exactly",
    "rerun": "a fresh training, generation or judging: a range wide enough for nondeterminism",
    "budget": "a resource limit of the free tier (16 GB GPU, session wall-clock)",
}
BOUNDS = ("equals", "min", "max", "gt", "lt")
KEYS = {
    "id", "read", "combine", "paper", "where", "class", "reason", "required", "tol", "unit",
    "when", "when_not", "when_reason", "when_not_reason", *BOUNDS,
}  # fmt: skip
REDUCERS = ("first", "last", "min", "max", "sum", "mean", "count", "distinct", "argmin", "argmax")
COMBINE = ("sum", "diff")
CONFIG = "config:"  # a bound "config:train.segment1.max_steps" is that config value
PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
WORDS = {
    "equals": "differs from",
    "min": "below the minimum",
    "max": "above the maximum",
    "gt": "not above",
    "lt": "not below",
}  # a failed bound, in words


Scalar = str | int | float | bool
Value = Scalar | list[Scalar]  # a TOML value of an expected entry (the paper's, a bound...)
Bound = Value  # a value, a reference ("file:path") or "config:KEY"
Condition = Value  # the value a condition wants, or the allowed values
# One check of verify.json, as Outcome.to_json writes it ("class" is a keyword: functional form)
CheckRow = TypedDict("CheckRow", {
    "id": str, "status": str, "required": bool, "value": Any, "paper": Any, "range": str,
    "class": str, "where": str, "read": str, "reason": str, "why": str, "unit": str,
})


@dataclass(frozen=True)
class Check:
    id: str
    read: tuple[str, ...]
    cls: str
    reason: str
    paper: Value | None = None  # the paper's number or words, shown
    where: str = ""
    combine: str = ""
    required: bool = True
    tol: float = 0.0
    unit: str = ""
    bounds: dict[str, Bound] = field(default_factory=dict)
    when: dict[str, Condition] = field(default_factory=dict)
    when_not: dict[str, Condition] = field(default_factory=dict)
    when_reason: str = ""
    when_not_reason: str = ""

    def files(self) -> set[str]:
        """Every run-directory file this check reads (values, bounds and conditions)."""
        refs = [*self.read, *(b for b in self.bounds.values() if is_ref(b))]
        refs += [k for k in (*self.when, *self.when_not) if is_ref(k)]
        return {split_ref(r)[0] for r in refs}


@dataclass
class Outcome:
    check: Check
    status: str  # PASS | FAIL | SKIP
    value: Any = None
    why: str = ""  # the reason of a SKIP or FAIL

    def to_json(self) -> CheckRow:
        c = self.check
        return {
            "id": c.id,
            "status": self.status,
            "required": c.required,
            "value": self.value,
            "paper": c.paper,
            "range": range_text(c),
            "class": c.cls,
            "where": c.where,
            "read": " + ".join(c.read) if c.combine == "sum" else " - ".join(c.read),
            "reason": c.reason,
            "why": self.why,
            "unit": c.unit,
        }


# ---- loading --------------------------------------------------------------------------------
def expected_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    return p if p.suffix == ".toml" or p.exists() else EXPECTED_DIR / f"{name_or_path}.toml"


def load_expected(name_or_path: str, readable: tuple[str, ...] | None = None) -> list[Check]:
    """Parse and validate an expected file; `readable` = the run files a reader may open."""
    path = expected_path(name_or_path)
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in EXPECTED_DIR.glob("*.toml")))
        raise ConfigError(
            f"no expected-ranges file '{name_or_path}' ({path})",
            f"set verify.expected to one of: {have}, or a path to a .toml file",
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})", "fix the syntax there") from exc
    checks = [
        _parse_check(entry, f"{path} check {i}") for i, entry in enumerate(raw.get("check", []))
    ]
    seen: set[str] = set()
    for c in checks:
        if c.id in seen:
            raise ConfigError(f"{path}: duplicate check id '{c.id}'", "give every check its own id")
        seen.add(c.id)
        outside = sorted(c.files() - set(readable)) if readable is not None else []
        if outside:
            raise ConfigError(
                f"{path}: check '{c.id}' reads {', '.join(outside)}, which verify does not declare",
                "read one of the declared stage outputs (advisor_repro.stages.verify.RUN_FILES)",
            )
    return checks


def _parse_check(entry: dict[str, Condition], where: str) -> Check:
    def bad(problem: str, fix: str) -> ConfigError:
        return ConfigError(f"{where} ('{entry.get('id', '?')}'): {problem}", fix)

    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise bad(f"unknown key(s) {', '.join(unknown)}", f"valid keys: {', '.join(sorted(KEYS))}")
    for key in ("id", "read", "class", "reason"):
        if key not in entry:
            raise bad(f"missing '{key}'", "every check needs id, read, class and reason")
    if entry["class"] not in CLASSES:
        raise bad(f"class '{entry['class']}' is unknown", f"use one of: {', '.join(CLASSES)}")
    types = {"id": str, "reason": str, "where": str, "unit": str, "required": bool,
             "tol": int | float, "when": dict, "when_not": dict, "when_reason": str,
             "when_not_reason": str, "combine": str}  # fmt: skip
    for key, tp in types.items():
        if key in entry and not isinstance(entry[key], tp):
            raise bad(
                f"'{key}' = {entry[key]!r} has the wrong type", "see repro/expected/paper.toml"
            )
    if entry.get("combine") and entry["combine"] not in COMBINE:
        raise bad(f"combine '{entry['combine']}' is unknown", f"use one of: {', '.join(COMBINE)}")
    bounds = {k: entry[k] for k in BOUNDS if k in entry}
    if not bounds:
        raise bad("no bound", f"give at least one of: {', '.join(BOUNDS)}")
    read = entry["read"]
    refs = tuple(read) if isinstance(read, list) else (read,)
    combine = entry.get("combine", "")
    if len(refs) > 1 and combine not in COMBINE:
        raise bad("several reads need 'combine'", f"set combine to one of: {', '.join(COMBINE)}")
    run_bounds = [b for b in bounds.values() if isinstance(b, str) and not b.startswith(CONFIG)]
    for ref in (*refs, *run_bounds):
        if not is_ref(ref):
            raise bad(f"'{ref}' is not FILE:PATH", "write e.g. 'train-1/summary.json:loss_end'")
        _, _, reducer = ref.partition("|")
        if reducer and reducer not in REDUCERS:
            raise bad(f"reducer '{reducer}' is unknown", f"use one of: {', '.join(REDUCERS)}")
    return Check(
        id=entry["id"],
        read=refs,
        cls=entry["class"],
        reason=entry["reason"],
        paper=entry.get("paper"),
        where=entry.get("where", ""),
        combine=combine,
        required=entry.get("required", True),
        tol=float(entry.get("tol", 0.0)),
        unit=entry.get("unit", ""),
        bounds=bounds,
        when=entry.get("when", {}),
        when_not=entry.get("when_not", {}),
        when_reason=entry.get("when_reason", ""),
        when_not_reason=entry.get("when_not_reason", ""),
    )


# ---- references -----------------------------------------------------------------------------
def is_ref(text: Any) -> bool:
    return isinstance(text, str) and ":" in text and "/" in text.partition(":")[0]


def split_ref(ref: str) -> tuple[str, str, str]:
    """'file:path|reducer' -> (file, path, reducer)."""
    file, _, rest = ref.partition(":")
    path, _, reducer = rest.partition("|")
    return file, path, reducer


# a parsed JSON document of the run directory, read by reference: any shape
JsonValue = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None


class Missing(Exception):
    """A value is not in the run: the message says why (the check is SKIP, never FAIL)."""


class RunFiles:
    """Reads run-directory files once each; `finished(stage)` says whether it may be trusted."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._cache: dict[str, JsonValue] = {}

    def load(self, rel: str) -> Any:
        if rel not in self._cache:
            path = self.run_dir / rel
            stage = rel.split("/", 1)[0]
            if not path.is_file():
                raise Missing(f"stage not run ({rel} is absent)")
            if not (self.run_dir / stage / "done.json").is_file() and any(
                (self.run_dir / stage / f).is_file() for f in ("started.json", "failed.json")
            ):
                raise Missing(f"stage {stage} did not finish")
            try:
                self._cache[rel] = read_jsonl(path) if rel.endswith(".jsonl") else read_json(path)
            except ValueError as exc:
                raise Missing(f"{rel} is not valid JSON ({exc})") from exc
        return self._cache[rel]

    def value(self, ref: str) -> Any:
        file, path, reducer = split_ref(ref)
        value = walk(self.load(file), [p for p in path.split(".") if p], f"{file}:{path}")
        return reduce(value, reducer, ref) if reducer else value


def walk(node: Any, parts: list[str], where: str) -> Any:
    if not parts:
        return node
    head, rest = parts[0], parts[1:]
    if head.startswith("*"):
        if not isinstance(node, list):
            raise Missing(f"no list at {where} (got {type(node).__name__})")
        rows = [r for r in node if _matches(r, head[1:])]
        return [walk(r, rest, where) for r in rows]
    if isinstance(node, dict) and head in node:
        return walk(node[head], rest, where)
    if isinstance(node, list) and _is_int(head) and -len(node) <= int(head) < len(node):
        return walk(node[int(head)], rest, where)
    raise Missing(f"no '{head}' in {where}")


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _matches(row: Any, selector: str) -> bool:
    """`[model=base,cap=256]`: every named field equals the value (compared as text)."""
    if not selector:
        return True
    pairs = [p.split("=", 1) for p in selector.strip("[]").split(",")]
    return isinstance(row, dict) and all(str(row.get(k)) == v for k, v in pairs)


def reduce(values: Any, reducer: str, ref: str) -> Any:
    if not isinstance(values, list):
        raise Missing(f"{ref}: '{reducer}' needs a list, got {type(values).__name__}")
    if reducer == "count":
        return len(values)
    if reducer == "distinct":
        return len({repr(v) for v in values})
    present = [v for v in values if v is not None]
    if not present:
        raise Missing(f"no values at {ref}")
    if reducer == "first":
        return present[0]
    if reducer == "last":
        return present[-1]
    if reducer in ("argmin", "argmax"):
        return values.index((min if reducer == "argmin" else max)(present))
    fn = {"min": min, "max": max, "sum": sum, "mean": statistics.fmean}[reducer]
    return fn(present)


# ---- judging --------------------------------------------------------------------------------
def evaluate(check: Check, run: RunFiles, config: Config) -> Outcome:
    """PASS, FAIL or SKIP (with the reason) for one check against one run."""
    skip = _condition_skip(check, run, config)
    if skip:
        return Outcome(check, SKIP, why=skip)
    try:
        values = [run.value(r) for r in check.read]
        value = values[0]
        if check.combine:
            value = sum(values) if check.combine == "sum" else values[0] - values[1]
        bounds = {k: _bound(b, run, config) for k, b in check.bounds.items()}
    except Missing as exc:
        return Outcome(check, SKIP, why=str(exc))
    except TypeError as exc:
        return Outcome(check, FAIL, why=f"cannot combine values: {exc}")
    failed = [
        f"{WORDS[k]} {fmt(b)}" for k, b in bounds.items() if not _holds(k, value, b, check.tol)
    ]
    if failed:
        return Outcome(check, FAIL, value, "; ".join(failed))
    return Outcome(check, PASS, value)


def _bound(bound: Bound, run: RunFiles, config: Config) -> Any:
    if isinstance(bound, str) and bound.startswith(CONFIG):
        return _condition_value(bound.removeprefix(CONFIG), run, config)
    return run.value(bound) if isinstance(bound, str) else bound


def _holds(kind: str, value: Any, bound: Any, tol: float) -> bool:
    if kind == "equals":
        if _number(value) and _number(bound):
            return math.isclose(value, bound, rel_tol=0.0, abs_tol=tol + 1e-12)
        return value == bound
    if not (_number(value) and _number(bound)):
        return False
    return {
        "min": value >= bound,
        "max": value <= bound,
        "gt": value > bound,
        "lt": value < bound,
    }[kind]


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _condition_skip(check: Check, run: RunFiles, config: Config) -> str:
    for key, allowed in check.when.items():
        have = _condition_value(key, run, config)
        if not _allowed(have, allowed):
            return _skip_text(check.when_reason, f"{key} is {have!r}, needs {allowed!r}")
    for key, refused in check.when_not.items():
        have = _condition_value(key, run, config)
        if _allowed(have, refused):
            return _skip_text(check.when_not_reason or check.when_reason, f"{key} is {have!r}")
    return ""


def _skip_text(reason: str, detail: str) -> str:
    return f"{reason} ({detail})" if reason else detail


def _condition_value(key: str, run: RunFiles, config: Config) -> Any:
    """A reference's value in the run, else the config value at a dotted key (None if none)."""
    if is_ref(key):
        try:
            return run.value(key)
        except Missing:
            return None
    node: Any = config
    for part in key.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif dataclasses.is_dataclass(node) and not isinstance(node, type):
            fields = {f.name for f in dataclasses.fields(node)}  # fields only, as to_dict
            node = getattr(node, part) if part in fields else None
        else:
            node = None
    # as Config.to_dict gives it: a section (a dataclass) compares as its dict
    return dataclasses.asdict(node) if dataclasses.is_dataclass(node) else node


def _allowed(have: Any, allowed: Any) -> bool:
    return have in allowed if isinstance(allowed, list) else have == allowed


# ---- display --------------------------------------------------------------------------------
def fmt(value: Any) -> str:
    """Short human form: 4 significant decimals, thousands separators, long lists elided."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if value == 0 or abs(value) >= 0.001:
            return f"{value:.4f}".rstrip("0").rstrip(".")  # the paper's 4 decimals at most
        return f"{value:.3g}"
    if isinstance(value, list):
        shown = ", ".join(fmt(v) for v in value[:4])
        return f"[{shown}, ... ({len(value)})]" if len(value) > 4 else f"[{shown}]"
    return str(value)


def with_unit(value: Any, unit: str) -> str:
    """A value as the verify table and the report print it, with its unit when it is a number."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return fmt(value) + (f" {unit}" if unit and number else "")


# A bound that is another value of the run, in the paper's words: the verify table and the
# report show these, never the file key (the key stays in the record's `read`)
STAGE_WORDS = {"train-1": "segment 1", "train-2": "segment 2", "control": "the control run",
               "judge": "the judge", "audit": "the factuality audit",
               "audit-training": "the training-data audit", "metrics": "the metrics",
               "generate": "generation", "audit-data": "the dataset audit", "data": "the data"}
REDUCER_WORDS = {"first": "first", "last": "last", "min": "lowest", "max": "highest",
                 "mean": "mean", "sum": "total", "count": "number of", "distinct": "distinct"}
KEY_WORDS = {"lr": "learning rate", "loss": "loss", "hard.k": "hard-error count",
             "confident_errors.base": "confident errors of the base model",
             "preference.counts.ft": "prompts where the fine-tuned answer was preferred",
             "max_steps": "step count"}


def bound_words(ref: str) -> str:
    """'train-1/steps.jsonl:*.loss|first' -> "segment 1's first loss"."""
    if ref.startswith(CONFIG):
        key = ref.removeprefix(CONFIG)
        stage, _, rest = key.partition(".")
        seg = {"segment1": "segment 1", "segment2": "segment 2"}.get(rest.split(".")[0], stage)
        return f"the profile's {seg} {KEY_WORDS.get(key.rsplit('.', 1)[-1], 'setting')}"
    file, path, reducer = split_ref(ref)
    stage = STAGE_WORDS.get(file.split("/")[0], file.split("/")[0])
    path = path.removeprefix("*.").removeprefix("primary.")
    what = next((w for k, w in KEY_WORDS.items() if path.endswith(k)),
                path.rsplit(".", 1)[-1].replace("_", " "))
    return f"{stage}'s {REDUCER_WORDS.get(reducer, reducer)} {what}".replace("  ", " ")


def bound_text(bound: Any) -> str:
    if isinstance(bound, str):
        return bound_words(bound)
    return fmt(bound)


def range_text(check: Check) -> str:
    b = check.bounds
    if "equals" in b:
        text = f"= {bound_text(b['equals'])}"
        return text + (f" ± {fmt(check.tol)}" if check.tol else "")
    if "min" in b and "max" in b:
        return f"[{bound_text(b['min'])}, {bound_text(b['max'])}]"
    parts = [
        f"{op} {bound_text(b[k])}"
        for k, op in (("min", "≥"), ("max", "≤"), ("gt", ">"), ("lt", "<"))
        if k in b
    ]
    return ", ".join(parts)
