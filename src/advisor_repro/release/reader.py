"""Read the paper's released evaluation files, recognised by their content, and check them.

PAPER.md "Released artifacts" lists four formats; any subset may be present in the folder:
- prompts CSV: header of sample_id, prompt and dataset_index, and nothing else;
- model outputs CSV: header holds `response` (then all of sample_id, dataset_index, prompt,
  response, generation_time_sec, response_char_length, response_token_count, was_truncated);
- judge scores CSV: header holds `preferred_slot` or `domain_a` (then all of sample_id,
  domain_a, help_a, domain_b, help_b, preferred_slot, note_a, note_b);
- raw BERTScore JSON: an object holding f1_per_item_base or f1_per_item_lora (then also
  token_cap, bertscore_model, rescale_with_baseline and the four precision/recall means).
A file's kind comes from its header or keys, never from its name. The two output CSVs share
one header; which is the base model's is read from the file name (a name with "base" vs
"lora", "ft", "fine" or "merged"), unless given explicitly (`--base` / `--ft`). Other files
(README, images, a CSV with other columns, subfolders) are listed as ignored.

Everything is checked before anything is written: a missing column, a bad value, a duplicate
or missing sample_id, counts that disagree between files, or bytes that are not UTF-8 are
refused with a DataError naming the file, the row (data rows counted from 1 after the header;
the file line too) and the column.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from advisor_repro.errors import DataError
from advisor_repro.files import sha256_file
from advisor_repro.pipeline import SourceFile  # imported.json lists them

PROMPT_COLUMNS = ("sample_id", "dataset_index", "prompt")
OUTPUT_COLUMNS = (*PROMPT_COLUMNS, "response", "generation_time_sec", "response_char_length",
                  "response_token_count", "was_truncated")  # fmt: skip
JUDGE_COLUMNS = ("sample_id", "domain_a", "help_a", "domain_b", "help_b", "preferred_slot",
                 "note_a", "note_b")  # fmt: skip
BERTSCORE_KEYS = ("token_cap", "bertscore_model", "rescale_with_baseline", "f1_per_item_base",
                  "f1_per_item_lora", "precision_mean_base", "recall_mean_base",
                  "precision_mean_lora", "recall_mean_lora")  # fmt: skip
FT_NAME_WORDS = ("lora", "ft", "fine", "merged", "tuned")
FIX = "repair the file (or remove it from the folder) and run `repro import-release` again"


class BertScoreFile(TypedDict):
    """The released raw BERTScore JSON, as checked (its keys are BERTSCORE_KEYS)."""

    token_cap: int
    bertscore_model: str
    rescale_with_baseline: bool
    f1_per_item_base: list[float]
    f1_per_item_lora: list[float]
    precision_mean_base: float
    recall_mean_base: float
    precision_mean_lora: float
    recall_mean_lora: float


@dataclass
class Table:
    """One CSV file: its rows as dicts, each with the data-row number and file line."""

    path: Path
    kind: str  # prompts | outputs | judge
    rows: list[dict[str, str]]
    lines: list[int]  # file line where each row starts


@dataclass
class Release:
    prompts: Table | None = None
    outputs: dict[str, Table] = field(default_factory=dict)  # "base" / "ft"
    judge: Table | None = None
    bertscore: BertScoreFile | None = None
    bertscore_path: Path | None = None
    ignored: list[str] = field(default_factory=list)

    def files(self) -> list[tuple[str, Path]]:
        found = [("prompts", self.prompts.path)] if self.prompts else []
        found += [(f"outputs:{role}", t.path) for role, t in sorted(self.outputs.items())]
        found += [("judge", self.judge.path)] if self.judge else []
        found += [("bertscore", self.bertscore_path)] if self.bertscore_path else []
        return found

    def provenance(self) -> list[SourceFile]:
        return [{"kind": k, "file": p.name, "sha256": sha256_file(p)} for k, p in self.files()]


def file_error(path: Path, where: str, problem: str) -> DataError:
    return DataError(f"{path}: {where}: {problem}", FIX)


# ---- reading and recognising -----------------------------------------------------------------
def read_text(path: Path) -> str | None:
    """The file as text; None for a file that is not text at all. A file that starts like a
    release file but holds bytes that are not UTF-8 is refused, naming row and column (CSV) or
    line and byte (JSON)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[: exc.start].decode("utf-8", errors="replace")
        if head.lstrip().startswith("{"):
            line = head.count("\n") + 1
            col = exc.start - data.rfind(b"\n", 0, exc.start)
            where = f"line {line}, byte {col}"
        elif "sample_id" in head.split("\n", 1)[0]:
            where = _bad_cell(data.decode("utf-8", errors="surrogateescape"))
        else:
            return None
        raise file_error(
            path, where,
            f"byte 0x{data[exc.start]:02x} is not UTF-8 (the released files are UTF-8)",
        ) from exc


def _bad_cell(text: str) -> str:
    """Row and column of the first CSV cell holding an undecodable byte."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    end = 1
    for n, row in enumerate(reader, start=1):
        for col, value in row.items():
            if isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value):
                return f"row {n} (line {end + 1}), column {col}"
        end = reader.line_num
    return "header (line 1)"


def kind_of_header(header: list[str]) -> str | None:
    cols = set(header)
    if "response" in cols:
        return "outputs"
    if "preferred_slot" in cols or "domain_a" in cols:
        return "judge"
    # only the prompt columns: the author's per-prompt metric tables also start with them
    if {"sample_id", "prompt"} <= cols <= set(PROMPT_COLUMNS):
        return "prompts"
    return None


def read_table(path: Path, text: str, kind: str) -> Table:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    need = {"prompts": PROMPT_COLUMNS, "outputs": OUTPUT_COLUMNS, "judge": JUDGE_COLUMNS}[kind]
    missing = [c for c in need if c not in header]
    if missing:
        raise file_error(path, "header (line 1)",
                   f"a {kind} file must have the column(s) {', '.join(missing)}; "
                   f"it has {', '.join(header)}")
    rows, lines, end = [], [], reader.line_num  # end: the line the previous record ended on
    for n, row in enumerate(reader, start=1):
        if None in row or any(v is None for v in row.values()):
            raise file_error(path, f"row {n} (line {end + 1})",
                             f"{len(header)} columns expected, the row has a different count")
        rows.append(row)
        lines.append(end + 1)
        end = reader.line_num
    if not rows:
        raise file_error(path, "rows", "the file has a header but no rows")
    return Table(path, kind, rows, lines)


def read_release(folders: Path | list[Path], base: Path | None = None,
                 ft: Path | None = None) -> Release:
    """Recognise and parse every release file directly in the folder(s) (the author's repo
    keeps them in two: data/v4-50-prompt-eval/ and docs/eval/)."""
    rel = Release()
    outputs: list[Table] = []
    folders = [folders] if isinstance(folders, (str, Path)) else folders
    paths = sorted(p for f in folders for p in Path(f).iterdir() if p.is_file())
    for path in paths:
        if path.name.startswith("."):
            continue
        text = read_text(path)
        if text is None:
            rel.ignored.append(f"{path.name} (not text)")
            continue
        if text.lstrip().startswith("{"):
            _take_json(rel, path, text)
            continue
        first = next(csv.reader(io.StringIO(text, newline="")), [])
        kind = kind_of_header([c.strip() for c in first])
        if kind is None:
            rel.ignored.append(f"{path.name} (not a release format)")
        elif kind == "outputs":
            outputs.append(read_table(path, text, kind))
        else:
            first = getattr(rel, kind)
            if first is not None:
                raise file_error(path, "file", f"a second {kind} file (the first: "
                                 f"{first.path.name}); keep one in the folder")
            setattr(rel, kind, read_table(path, text, kind))
    rel.outputs = assign_roles(outputs, base, ft)
    return rel


def _take_json(rel: Release, path: Path, text: str) -> None:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise file_error(path, f"line {exc.lineno}, character {exc.colno}",
                   f"not valid JSON ({exc.msg})") from exc
    if not (isinstance(obj, dict) and {"f1_per_item_base", "f1_per_item_lora"} & set(obj)):
        rel.ignored.append(f"{path.name} (JSON, not the BERTScore format)")
        return
    if rel.bertscore is not None:
        raise file_error(path, "file", f"a second BERTScore file (the first: {rel.bertscore_path})")
    rel.bertscore, rel.bertscore_path = check_bertscore(path, obj), path


def assign_roles(tables: list[Table], base: Path | None, ft: Path | None) -> dict[str, Table]:
    if len(tables) > 2:
        raise file_error(tables[2].path, "file", "more than two model-output files in the folder "
                   f"({', '.join(t.path.name for t in tables)}): keep the base and the FT one")
    by_path = {t.path.resolve(): t for t in tables}
    roles: dict[str, Table] = {}
    for role, given in (("base", base), ("ft", ft)):
        if given is not None:
            if Path(given).resolve() not in by_path:
                raise DataError(f"--{role} {given} is not a model-output file in the folder",
                                "name one of: " + ", ".join(t.path.name for t in tables))
            roles[role] = by_path[Path(given).resolve()]
    for t in tables:
        if t in roles.values():
            continue
        name = t.path.stem.lower()
        guess = "base" if "base" in name else "ft" if any(w in name for w in FT_NAME_WORDS) \
            else None
        if guess is None or guess in roles:
            raise DataError(f"{t.path}: cannot tell whether these are the base or the "
                            "fine-tuned model's outputs (both files share one header)",
                            "say it: repro import-release DIR --base FILE --ft FILE")
        roles[guess] = t
    return roles


# ---- values ------------------------------------------------------------------------------------
def cell_int(t: Table, i: int, col: str, lo: int | None = None, hi: int | None = None) -> int:
    raw = t.rows[i][col].strip()
    try:
        value = int(raw)
    except ValueError:
        raise cell_error(t, i, col, f"{raw!r} is not an integer") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise cell_error(t, i, col, f"{value} is outside {lo}..{hi if hi is not None else ''}")
    return value


def cell_float(t: Table, i: int, col: str) -> float:
    raw = t.rows[i][col].strip()
    try:
        value = float(raw)
    except ValueError:
        raise cell_error(t, i, col, f"{raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise cell_error(t, i, col, f"{raw!r} is not a finite number >= 0")
    return value


def cell_bool(t: Table, i: int, col: str) -> bool:
    raw = t.rows[i][col].strip().lower()
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0"):
        return False
    raise cell_error(t, i, col, f"{t.rows[i][col]!r} is not True/False")


def cell_error(t: Table, i: int, col: str, problem: str) -> DataError:
    return file_error(t.path, f"row {i + 1} (line {t.lines[i]}), column {col}", problem)


def sample_ids(t: Table) -> list[int]:
    """The table's sample ids, refusing duplicates with both rows named."""
    seen: dict[int, int] = {}
    for i in range(len(t.rows)):
        sid = cell_int(t, i, "sample_id")
        if sid in seen:
            raise cell_error(t, i, "sample_id",
                         f"sample_id {sid} repeats row {seen[sid] + 1} (line {t.lines[seen[sid]]})")
        seen[sid] = i
    return list(seen)


def check_bertscore(path: Path, obj: dict[str, Any]) -> BertScoreFile:
    """The parsed JSON object (untyped until checked here) as a BertScoreFile."""
    missing = [k for k in BERTSCORE_KEYS if k not in obj]
    if missing:
        raise file_error(path, "keys", f"the BERTScore file lacks {', '.join(missing)}")
    for key in ("f1_per_item_base", "f1_per_item_lora"):
        values = obj[key]
        if not isinstance(values, list) or not values:
            raise file_error(path, f"key {key}", "must be a non-empty list of numbers")
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise file_error(path, f"key {key}, item {i + 1}", f"{v!r} is not a finite number")
    n_base, n_ft = len(obj["f1_per_item_base"]), len(obj["f1_per_item_lora"])
    if n_base != n_ft:
        raise file_error(path, "keys f1_per_item_base / f1_per_item_lora",
                   f"mismatched counts: {n_base} base values, {n_ft} fine-tuned values")
    for key in BERTSCORE_KEYS[5:]:
        v = obj[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise file_error(path, f"key {key}", f"{v!r} is not a finite number")
    if isinstance(obj["token_cap"], bool) or not isinstance(obj["token_cap"], int) \
            or obj["token_cap"] <= 0:
        raise file_error(path, "key token_cap", f"{obj['token_cap']!r} is not a positive integer")
    if not isinstance(obj["rescale_with_baseline"], bool):
        raise file_error(path, "key rescale_with_baseline", "must be true or false")
    return obj  # every key of BertScoreFile is now present and of its type
