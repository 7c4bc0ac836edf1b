"""`repro import-release`: the paper's released evaluation files -> the run directory contract.

What is written (only for the files present; all checked first, see advisor_repro.release.reader):
- data/eval_prompts.jsonl: sample_id, dataset_index, prompt, reference = null (the paper did
  not release its reference answers). No data/done.json: the data stage has not run here.
- generate/answers.jsonl at the inferred cap (256 for the paper's files): sample_id,
  dataset_index, model ("base" / "ft"), cap, text, new_tokens (response_token_count, EOS
  included), truncated (was_truncated), seconds (generation_time_sec), released_chars.
- metrics/summary.json and per_item.jsonl from the raw BERTScore file: per-item F1 means, the
  mean delta and its bootstrap CI (as the metrics stage computes them), the released P/R
  means, and truncation and lengths from the answers; "origin": "release".
- judge/verdicts.jsonl in the judge stage's row format (advisor_repro.judges.stats): the
  released sample_id, domain_a, help_a, domain_b, help_b, preferred_slot (a / b / tie),
  note_a, note_b, plus pass "primary", status "ok", base_slot "A" / "B" and origin "release";
  judge/mapping.json (judge_stats.mapping_document): reconstructed, since the mapping was not
  released, by the author's rule: random.Random(judge.slot_seed).random() < 0.5 puts base in
  slot A, one draw per prompt in the prompts' order; judge/summary.json from the judge
  stage's own statistics (stages.judge.summarize_folder).
- <stage>/imported.json (the source files and their sha256, and the hashes of the files written
  from them) for data, generate, metrics and judge: the pipeline's `imported` state, which
  `repro all` and single stages leave alone unless forced; and a completion record
  (<stage>/done.json, with "imported") for generate, metrics and judge, so that the stages
  after them (verify, report) read them as finished ones.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from advisor_repro import pipeline
from advisor_repro.config import Config
from advisor_repro.errors import ConfigError, DataError
from advisor_repro.evaluation.metrics import BOOTSTRAP_METHOD, VERSIONED, compare
from advisor_repro.files import write_json, write_jsonl
from advisor_repro.judges.pairs import figures, summarize_folder
from advisor_repro.judges.stats import mapping_document
from advisor_repro.manifest import library_versions
from advisor_repro.release.reader import (
    Release,
    SourceFile,
    Table,
    cell_bool,
    cell_error,
    cell_float,
    cell_int,
    file_error,
    read_release,
    sample_ids,
)

STAGE_FOLDERS = ("data", "generate", "metrics", "judge")


class PromptInfo(TypedDict):
    dataset_index: int
    prompt: str


class OutputRow(TypedDict):
    """One released answer, parsed and checked; `i` is its data row in the CSV."""

    sample_id: int
    i: int
    text: str
    new_tokens: int  # response_token_count, EOS included
    truncated: bool
    seconds: float
    released_chars: int


Outputs = dict[str, list[OutputRow]]  # "base" / "ft" -> its answers in file order


class JudgeRow(TypedDict):
    """One released verdict, blind: slots A and B."""

    sample_id: int
    domain_a: int
    help_a: int
    domain_b: int
    help_b: int
    preferred_slot: str  # a | b | tie
    note_a: str
    note_b: str


# judge/verdicts.jsonl's row for a released verdict ("pass" is a keyword: functional form)
ReleasedVerdict = TypedDict("ReleasedVerdict", {
    "sample_id": int, "domain_a": int, "help_a": int, "domain_b": int, "help_b": int,
    "preferred_slot": str, "note_a": str, "note_b": str, "pass": str, "status": str,
    "origin": str, "base_slot": str,
})


class ReleasedAnswer(TypedDict):
    """generate/answers.jsonl's row for a released answer."""

    sample_id: int
    dataset_index: int
    model: str
    cap: int
    text: str
    new_tokens: int
    truncated: bool
    seconds: float
    released_chars: int


class PerItem(TypedDict):
    """metrics/per_item.jsonl's row."""

    sample_id: int | None
    item: int
    model: str
    cap: int
    bertscore_f1: float


class MeanOnly(TypedDict):
    """A released precision or recall: the two means, no per-item values, so no CI."""

    base: float
    ft: float
    delta: float
    ci_low: None
    ci_high: None


class CapEntry(TypedDict):
    """metrics/summary.json's block for the released cap."""

    n: int
    bertscore_f1: dict[str, float]  # evaluation.metrics.compare: means, delta, bootstrap CI
    bertscore_p: MeanOnly
    bertscore_r: MeanOnly
    truncation_rate: NotRequired[dict[str, float]]  # per model, where both outputs are present
    mean_chars: NotRequired[dict[str, float]]
    mean_tokens: NotRequired[dict[str, float]]


Figure = int | float | str | None  # one figure of a completion record


@dataclass(frozen=True)
class Checked:
    """Everything read from the release and checked, before a byte is written."""

    rel: Release
    prompts: dict[int, PromptInfo]  # sample_id -> prompt, in file order
    rows: Outputs
    cap: int | None
    judged: list[JudgeRow]
    order: list[int]  # sample_ids in the prompts' order (else the judge file's)
    # metrics/summary.json (the metrics stage's record: keyed by the cap as text) and per_item
    metrics: tuple[dict[str, Any], list[PerItem]] | None


@dataclass(frozen=True)
class Imported:
    """What `repro import-release` did: recorded in the manifest and printed."""

    files: list[SourceFile]
    ignored: list[str]
    written: dict[str, dict[str, Figure]]  # stage -> its completion record's figures
    prompts: int
    cap: int | None

    def to_json(self) -> ImportedJson:
        return {"files": self.files, "ignored": self.ignored, "written": self.written,
                "prompts": self.prompts, "cap": self.cap}


class ImportedJson(TypedDict):
    files: list[SourceFile]
    ignored: list[str]
    written: dict[str, dict[str, Figure]]
    prompts: int
    cap: int | None


# ---- cross-file checks -------------------------------------------------------------------------
def prompt_table(rel: Release) -> dict[int, PromptInfo]:
    """sample_id -> {dataset_index, prompt}, in file order, from the prompts file or else the
    base (else FT) outputs file; {} when neither is present."""
    t = rel.prompts or rel.outputs.get("base") or rel.outputs.get("ft")
    if t is None:
        return {}
    ids = sample_ids(t)
    out: dict[int, PromptInfo] = {}
    for i, sid in enumerate(ids):
        prompt = t.rows[i]["prompt"]
        if not prompt.strip():
            raise cell_error(t, i, "prompt", "empty prompt")
        out[sid] = {"dataset_index": cell_int(t, i, "dataset_index", lo=0), "prompt": prompt}
    return out


def same_ids(t: Table, ids: list[int], want: list[int], source: str) -> None:
    extra = [i for i, sid in enumerate(ids) if sid not in set(want)]
    if extra:
        raise cell_error(t, extra[0], "sample_id", f"sample_id {ids[extra[0]]} is not in {source}")
    missing = [sid for sid in want if sid not in set(ids)]
    if missing:
        raise file_error(t.path, "column sample_id",
                   f"missing sample_id {', '.join(map(str, missing[:5]))} "
                   f"({len(ids)} rows for {len(want)} prompts in {source})")


def output_rows(rel: Release, prompts: dict[int, PromptInfo], source: str) -> Outputs:
    """role -> list of parsed rows, each checked against the prompts."""
    parsed: Outputs = {}
    for role, t in sorted(rel.outputs.items()):
        ids = sample_ids(t)
        same_ids(t, ids, list(prompts), source)
        rows: list[OutputRow] = []
        for i, sid in enumerate(ids):
            if cell_int(t, i, "dataset_index", lo=0) != prompts[sid]["dataset_index"]:
                raise cell_error(t, i, "dataset_index",
                             f"{t.rows[i]['dataset_index']} differs from {source} "
                             f"({prompts[sid]['dataset_index']}) for sample_id {sid}")
            if t.rows[i]["prompt"] != prompts[sid]["prompt"]:
                raise cell_error(t, i, "prompt", f"differs from {source} for sample_id {sid}")
            rows.append({"sample_id": sid, "i": i, "text": t.rows[i]["response"],
                         "new_tokens": cell_int(t, i, "response_token_count", lo=0),
                         "truncated": cell_bool(t, i, "was_truncated"),
                         "seconds": cell_float(t, i, "generation_time_sec"),
                         "released_chars": cell_int(t, i, "response_char_length", lo=0)})
        parsed[role] = rows
    return parsed


def infer_cap(rel: Release, rows: Outputs, given: int | None) -> int | None:
    """The token cap: --cap, else the BERTScore file's token_cap, else the smallest token
    count of a truncated answer. Every answer must agree: truncated <=> new_tokens >= cap."""
    cap = given or (rel.bertscore or {}).get("token_cap")
    if cap is None:
        counts = [r["new_tokens"] for rs in rows.values() for r in rs if r["truncated"]]
        if not counts and rows:
            raise DataError("no released answer is truncated, so the token cap cannot be "
                            "inferred", "give it: repro import-release DIR --cap 256")
        cap = min(counts) if counts else None
    for role, rs in rows.items():
        for r in rs:
            if r["truncated"] != (r["new_tokens"] >= cap):
                raise cell_error(rel.outputs[role], r["i"], "was_truncated",
                             f"{r['truncated']} disagrees with response_token_count "
                             f"{r['new_tokens']} at the token cap {cap}")
    return cap


def judge_rows(rel: Release, order: list[int], source: str) -> list[JudgeRow]:
    t = rel.judge
    assert t is not None
    ids = sample_ids(t)
    if order:
        same_ids(t, ids, order, source)
    rows: list[JudgeRow] = []
    for i, sid in enumerate(ids):
        scores = [cell_int(t, i, col, lo=0, hi=3)
                  for col in ("domain_a", "help_a", "domain_b", "help_b")]
        pref = t.rows[i]["preferred_slot"].strip().lower()
        if pref not in ("a", "b", "tie"):
            raise cell_error(t, i, "preferred_slot", f"{t.rows[i]['preferred_slot']!r} is not "
                                                 "a, b or tie")
        rows.append({"sample_id": sid, "domain_a": scores[0], "help_a": scores[1],
                     "domain_b": scores[2], "help_b": scores[3], "preferred_slot": pref,
                     "note_a": t.rows[i]["note_a"], "note_b": t.rows[i]["note_b"]})
    return rows


# ---- what is written ---------------------------------------------------------------------------
def verdict_rows(rows: list[JudgeRow], base_slot: dict[str, str]) -> list[ReleasedVerdict]:
    """The released verdicts in the judge stage's row format (advisor_repro.judges.stats)."""
    return [{**r, "pass": "primary", "status": "ok", "origin": "release",
             "base_slot": base_slot[str(r["sample_id"])]} for r in rows]


def answers(rows: Outputs, prompts: dict[int, PromptInfo], cap: int) -> list[ReleasedAnswer]:
    return [{"sample_id": r["sample_id"], "dataset_index": prompts[r["sample_id"]]["dataset_index"],
             "model": role, "cap": cap, "text": r["text"], "new_tokens": r["new_tokens"],
             "truncated": r["truncated"], "seconds": r["seconds"],
             "released_chars": r["released_chars"]}
            for role in ("base", "ft") if role in rows for r in rows[role]]  # fmt: skip


def metrics_summary(cfg: Config, rel: Release, rows: Outputs, order: list[int],
                    path: Path) -> tuple[dict[str, Any], list[PerItem]]:
    """metrics/summary.json and per_item.jsonl from the raw BERTScore file."""
    b = rel.bertscore
    assert b is not None
    base, ft = b["f1_per_item_base"], b["f1_per_item_lora"]
    if order and len(order) != len(base):
        raise file_error(path, "key f1_per_item_base",
                   f"mismatched counts: {len(base)} per-item values for {len(order)} prompts")
    mc, cap = cfg.metrics, b["token_cap"]
    pr: dict[str, MeanOnly] = {}
    for key, name in (("precision", "bertscore_p"), ("recall", "bertscore_r")):
        mb, mf = b[f"{key}_mean_base"], b[f"{key}_mean_lora"]
        pr[name] = {"base": mb, "ft": mf, "delta": mf - mb, "ci_low": None, "ci_high": None}
    entry: CapEntry = {
        "n": len(base),
        "bertscore_f1": compare(base, ft, mc.bootstrap_resamples, mc.bootstrap_seed),
        "bertscore_p": pr["bertscore_p"], "bertscore_r": pr["bertscore_r"],
    }
    if set(rows) == {"base", "ft"}:
        n = len(rows["base"])
        entry["truncation_rate"] = {m: sum(r["truncated"] for r in rows[m]) / n for m in rows}
        entry["mean_chars"] = {m: sum(len(r["text"]) for r in rows[m]) / n for m in rows}
        entry["mean_tokens"] = {m: sum(r["new_tokens"] for r in rows[m]) / n for m in rows}
    summary = {"origin": "release", "caps": [cap], "n_items": len(base), str(cap): entry,
               "bertscore": {"model": b["bertscore_model"], "num_layers": None, "lang": "en",
                             "rescale_with_baseline": b["rescale_with_baseline"], "hash": None},
               "bootstrap": {"resamples": mc.bootstrap_resamples, "seed": mc.bootstrap_seed,
                             "percentiles": [2.5, 97.5], "method": BOOTSTRAP_METHOD},
               "normalisation": "as released (BERTScore computed by the author)",
               "versions": library_versions(VERSIONED)}  # fmt: skip
    per_item: list[PerItem] = [
        {"sample_id": order[i] if order else None, "item": i, "model": mod, "cap": cap,
         "bertscore_f1": vals[i]}
        for mod, vals in (("base", base), ("ft", ft)) for i in range(len(base))]
    return summary, per_item


def completion_record(stage_name: str, cfg: Config, run_dir: Path, figures: dict[str, Figure],
                      imported: list[SourceFile]) -> None:
    """done.json as the pipeline writes it; its input fingerprint is the registered stage's
    (so `repro status` sees it current), or an empty one for a stage not registered yet."""
    try:
        stage = pipeline.get_stage(stage_name)
        inputs = pipeline.input_fingerprint(stage, cfg, run_dir)
    except ConfigError:
        inputs = {"config": None, "files": {}, "external": {}}
    folder = run_dir / stage_name
    write_json(folder / pipeline.RECORD, {
        "stage": stage_name, "seconds": 0.0, "finished": time.time(), "inputs": inputs,
        "outputs": pipeline.output_hashes(folder), "figures": figures,
        "warnings": [], "imported": imported,
    })  # fmt: skip


def mark_imported(folder: Path, prov: list[SourceFile], no_reference: bool = False) -> None:
    """<stage>/imported.json: the released files (name, kind, sha256) and the hashes of what was
    written from them (and, for data/, that the release holds no reference answers). Its
    presence makes the stage `imported` for the pipeline: kept by `repro all` and single
    stages unless forced, treated as done by verify and report."""
    write_json(folder / pipeline.IMPORTED,
               {"files": prov, "outputs": pipeline.output_hashes(folder),
                **({"reference": None} if no_reference else {})})


def import_release(folders: Path | list[Path], run_dir: Path, cfg: Config,
                   base: Path | None = None, ft: Path | None = None, cap: int | None = None,
                   force: bool = False) -> Imported:
    """Check everything, then write the run directory; returns what was imported."""
    rel = read_release(folders, base, ft)
    if not rel.files():
        raise DataError(f"{folders}: no released evaluation file found (ignored: "
                        f"{', '.join(rel.ignored) or 'nothing'})",
                        "point at the folder(s) holding the released CSV / JSON files")
    prompts = prompt_table(rel)
    source = (rel.prompts or rel.outputs.get("base") or rel.outputs.get("ft")).path.name \
        if prompts else ""
    order = list(prompts)
    rows = output_rows(rel, prompts, source)
    cap = infer_cap(rel, rows, cap)
    judged = judge_rows(rel, order, source) if rel.judge else []
    order = order or [r["sample_id"] for r in judged]
    summary = metrics_summary(cfg, rel, rows, order, rel.bertscore_path) \
        if rel.bertscore else None
    _clear(run_dir, force)
    return _write(cfg, run_dir, Checked(rel, prompts, rows, cap, judged, order, summary))


def _clear(run_dir: Path, force: bool) -> None:
    present = [f for f in STAGE_FOLDERS if (run_dir / f).exists()]
    if present and not force:
        raise ConfigError(f"{run_dir} already holds {', '.join(present)}/",
                          "import into a new --run-dir, or add --force to replace them")
    for f in present:
        shutil.rmtree(run_dir / f)


def _write(cfg: Config, run_dir: Path, checked: Checked) -> Imported:
    rel, prompts, rows, cap = checked.rel, checked.prompts, checked.rows, checked.cap
    judged, order, summary = checked.judged, checked.order, checked.metrics
    prov = rel.provenance()
    done: dict[str, dict[str, Figure]] = {}
    if prompts:
        write_jsonl(run_dir / "data" / "eval_prompts.jsonl",
                    [{"sample_id": s, **p, "reference": None} for s, p in prompts.items()])
    if rows:
        write_jsonl(run_dir / "generate" / "answers.jsonl", answers(rows, prompts, cap))
        done["generate"] = {"answers": sum(len(r) for r in rows.values()), "cap": cap}
    if summary is not None:
        write_json(run_dir / "metrics" / "summary.json", summary[0])
        write_jsonl(run_dir / "metrics" / "per_item.jsonl", summary[1])
        f1 = summary[0][str(summary[0]["caps"][0])]["bertscore_f1"]
        done["metrics"] = {"bertscore_f1_delta": round(f1["delta"], 4)}
    if judged:
        jc = cfg.judge
        mapping = {**mapping_document(order, jc.slot_seed),
                   "origin": "reconstructed: the release holds no A/B mapping"}
        write_json(run_dir / "judge" / "mapping.json", mapping)
        write_jsonl(run_dir / "judge" / "verdicts.jsonl",
                    verdict_rows(judged, mapping["base_slot"]))
        summary_j = summarize_folder(run_dir / "judge", jc.bootstrap_resamples, jc.bootstrap_seed)
        done["judge"] = figures(summary_j)
    for stage in ("generate", "metrics", "judge"):  # metrics' fingerprint reads generate's
        if stage in done:
            completion_record(stage, cfg, run_dir, done[stage], prov)
    for stage in ("data", *done) if prompts else done:
        mark_imported(run_dir / stage, prov, no_reference=stage == "data")
    return Imported(files=prov, ignored=rel.ignored, written=done, prompts=len(prompts), cap=cap)
