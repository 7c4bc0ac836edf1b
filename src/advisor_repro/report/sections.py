"""The report's sections, built from a run directory's files (a reader: run-relative path ->
parsed JSON, or None when absent). Each section draws what the run has and says "not run"
otherwise. Rendering is advisor_repro.report.render; the stage is advisor_repro.stages.report.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advisor_repro.config import Config
from advisor_repro.expected import fmt, with_unit
from advisor_repro.report import plots
from advisor_repro.report.render import Figure, NotRun, Pre, Section, Table, Text

REPO = Path(__file__).resolve().parents[3]
DEVIATIONS = REPO / "repro" / "deviations.toml"
RELEASE = REPO / "artifacts" / "release.toml"
SEGMENTS = ("train-1", "train-2")
GB_PER_GIB = 2**30 / 1e9
Reader = Callable[[str], Any]


def flatten(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Scalar leaves of a JSON document as (dotted key, value); long lists are summarised."""
    if isinstance(node, dict):
        return [kv for k, v in node.items() for kv in flatten(v, f"{prefix}{k}.")]
    if isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        return [(prefix.rstrip("."), f"{len(node)} records")]
    return [(prefix.rstrip("."), node)]


def kv_table(doc: Any, limit: int = 80) -> Table:
    rows = [[k, fmt(v)] for k, v in flatten(doc)][:limit]
    return Table(["key", "value"], rows)


# ---- sections -------------------------------------------------------------------------------
def verify_section(get: Reader) -> tuple[Section, tuple[str, str]]:
    record = get("verify/verify.json")
    if not record:
        return Section("verify", "Verify: this run against the paper", [NotRun("verify")]), (
            "none",
            "verify not run",
        )
    n = record["counts"]
    ok = "PASS" if record["ok"] else "FAIL"
    text = f"verify {ok}: {n['PASS']} pass, {n['FAIL']} fail, {n['SKIP']} skip"
    if record["failing"]:
        text += " (failing: " + ", ".join(record["failing"]) + ")"
    rows, classes = [], []
    for c in record["checks"]:
        status = c["status"] + ("" if c["required"] else " (info)")
        rows.append(
            [
                status,
                c["id"],
                with_unit(c["paper"], c["unit"]),
                with_unit(c["value"], c["unit"]),
                c["range"],
                c["class"],
                c["where"],
                c["why"],
            ]
        )
        classes.append(c["status"])
    blocks = [
        Text(
            f"Expected ranges: {Path(record['expected']).name}"
            f"{' (strict: a skipped required check fails)' if record['strict'] else ''}. "
            "Classes: " + "; ".join(f"{k}: {v}" for k, v in record["classes"].items()) + "."
        ),
        Table(
            ["status", "check", "paper", "this run", "range", "class", "paper location", "note"],
            rows,
            classes,
        ),
        Pre(
            "why each range (tolerance reasons)",
            "\n".join(
                f"{c['id']} ({c['class']}, reads {c['read']}): {c['reason']}"
                for c in record["checks"]
            ),
        ),
    ]
    return Section("verify", "Verify: this run against the paper", blocks), (ok, text)


def _curve(rows: list[dict[str, Any]] | None, offset: float = 0.0) -> list[tuple[float, float]]:
    """(cumulative epoch, loss) points; the step when rows carry no epoch."""
    pts = []
    for r in rows or []:
        x = r.get("epoch", r.get("step"))
        if isinstance(x, int | float) and isinstance(r.get("loss"), int | float):
            pts.append((offset + x, float(r["loss"])))
    return pts


def _has_epochs(steps: dict[str, Any], control: Any) -> bool:
    rows = [r for rs in (*steps.values(), control) for r in rs or []]
    return bool(rows) and all("epoch" in r for r in rows)


FIGURES = (  # (label, key path in a segment's summary.json)
    ("optimizer steps", "optimizer_steps"),
    ("epochs", "epochs_done"),
    ("micro-batch", "shape.micro_batch"),
    ("gradient accumulation", "shape.grad_accum"),
    ("warmup steps", "warmup_steps"),
    ("loss at the first step", "start_loss"),
    ("loss at the last step", "end_loss"),
    ("lowest loss", "min_loss"),
    ("  at step", "min_loss_step"),
    ("held-out loss (test split)", "heldout.loss"),
    ("trainable parameters", "trainable_params"),
    ("training seconds", "train_seconds"),
    ("process seconds", "process_seconds"),
    ("tokens / s", "tokens_per_s"),
    ("device", "device"),
    ("dtype", "dtype"),
    ("backend", "backend"),
)


def _at(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def training_section(get: Reader) -> Section:
    steps = {s: get(f"{s}/steps.jsonl") for s in SEGMENTS}
    control = get("control/steps.jsonl")
    seg1 = _curve(steps["train-1"])
    end1 = seg1[-1][0] if seg1 else None
    # segment 2 is a fresh trainer counting its own epochs (and steps) from 0: after segment 1
    seg2 = _curve(steps["train-2"], end1 or 0.0)
    blocks: list[Any] = []
    if seg1 or seg2 or control:
        png = plots.loss_curve(
            {"segment 1 (P100 session)": seg1, "segment 2 (T4 session)": seg2},
            _curve(control),
            end1 if seg2 else None,
            "epoch (cumulative over both segments)"
            if _has_epochs(steps, control)
            else "optimizer step",
        )
        missing = [
            s for s in (*SEGMENTS, "control") if not (steps.get(s) or (s == "control" and control))
        ]
        note = f"; not run: {', '.join(missing)}" if missing else ""
        blocks.append(
            Figure(
                "loss",
                png,
                "Training loss over cumulative epochs: segment 1, "
                f"the adapter-only handoff (dotted), segment 2; dashed: control{note}",
            )
        )
    else:
        blocks.append(NotRun("loss curve (train-1, train-2 and control have no steps.jsonl)"))
    summaries = {s: get(f"{s}/summary.json") for s in (*SEGMENTS, "control")}
    summaries = {s: v for s, v in summaries.items() if v}
    if summaries:
        rows = [[label, *(fmt(_at(v, key)) for v in summaries.values())] for label, key in FIGURES]
        blocks.append(Table(["figure", *summaries], rows))
    verified = get("handoff/verified.json")
    blocks.append(
        Text(
            f"Handoff bundle verified in a fresh process: {verified.get('ok')}, "
            f"{fmt(verified.get('trainable_params_loaded'))} trainable parameters loaded."
        )
        if verified
        else NotRun("handoff")
    )
    comparison = get("control/comparison.json")
    if comparison:
        shown = {k: v for k, v in comparison.items() if k != "curves"}
        blocks += [Text("Control (continuous 3 epochs) vs the two segments:"), kv_table(shown)]
    return Section("training", "Training: loss across the handoff", blocks)


def peak_memory_gb(summary: dict[str, Any]) -> dict[str, float]:
    """A segment summary's `memory_peak` in GB: torch allocated / reserved and NVML used on a
    GPU; the process's resident memory on the CPU (labelled so)."""
    peak = summary.get("memory_peak") or {}
    out = {}
    for key, v in peak.items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            label = key.removesuffix("_gib").replace("_", " ")
            out[label if summary.get("device") != "cpu" else f"{label} (CPU process)"] = round(
                v * GB_PER_GIB if key.endswith("_gib") else v, 3
            )
    return out


def memory_section(get: Reader, cfg: Config) -> Section:
    per_seg = {s: peak_memory_gb(get(f"{s}/summary.json") or {}) for s in SEGMENTS}
    per_seg = {s: v for s, v in per_seg.items() if v}
    budget_gb = cfg.hardware.vram_budget_gib * GB_PER_GIB
    if not per_seg:
        return Section(
            "memory",
            "Peak memory per segment",
            [NotRun("peak memory (no segment summary with memory_peak: training not run)")],
        )
    png = plots.memory_bars(
        per_seg,
        {
            "16 GB": 16.0,
            f"budget {budget_gb:.2f} GB ({cfg.hardware.vram_budget_gib} GiB, T4)": budget_gb,
        },
    )
    return Section(
        "memory",
        "Peak memory per segment",
        [
            Figure(
                "memory",
                png,
                "Peak memory per segment (GB) against the 16 GB line and the "
                "profile's budget. The paper's '15.888 / 14.741 GB' are device capacities, not "
                "peaks (deviations: peak-memory-capacity).",
            ),
        ],
    )


PER_ITEM = {"bertscore_f1": "BERTScore F1", "rouge_l_f1": "ROUGE-L F1", "chars": "length (chars)"}


def _per_item_panels(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """'<metric> @ <cap> tokens' -> {'base': [...], 'ft': [...]} from metrics/per_item.jsonl
    (one row per sample, model and cap)."""
    panels: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        for key, title in PER_ITEM.items():
            v = r.get(key)
            if (
                isinstance(v, int | float)
                and not isinstance(v, bool)
                and r.get("model")
                in (
                    "base",
                    "ft",
                )
            ):
                panel = panels.setdefault(f"{title} @ {r.get('cap')} tokens", {})
                panel.setdefault(r["model"], []).append(float(v))
    return {k: v for k, v in panels.items() if v.get("base") and v.get("ft")}


def metrics_section(get: Reader) -> Section:
    blocks: list[Any] = []
    panels = _per_item_panels(get("metrics/per_item.jsonl") or [])
    if panels:
        blocks.append(
            Figure(
                "metrics",
                plots.distributions(panels),
                "Per-item reference metrics, base vs fine-tuned, per token cap",
            )
        )
    else:
        blocks.append(NotRun("metric distributions (metrics/per_item.jsonl absent)"))
    summary = get("metrics/summary.json")
    if summary:
        blocks.append(kv_table(summary))
    return Section("metrics", "Reference metrics: base vs fine-tuned", blocks)


def judge_section(get: Reader) -> Section:
    summary = get("judge/summary.json")
    if not summary:
        return Section("judge", "LLM judge", [NotRun("judge (judge/summary.json absent)")])
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    prefs: dict[str, dict[str, int]] = {}
    rows = []
    for name in ("primary", "swap"):
        p = summary.get(name)
        if not isinstance(p, dict):
            continue
        for metric, s in (p.get("scores") or {}).items():
            if s:
                scores[f"{metric} ({name})"] = {
                    m: (s[m]["mean"], s[m]["sd"]) for m in ("base", "ft")
                }
                ci = s.get("ci95") or [None, None]
                rows.append(
                    [
                        name,
                        metric,
                        fmt(s["base"]["mean"]),
                        fmt(s["ft"]["mean"]),
                        fmt(s["delta"]),
                        f"[{fmt(ci[0])}, {fmt(ci[1])}]",
                    ]
                )
        prefs[f"{name} pass"] = (p.get("preference") or {}).get("counts", {})
    consistency = summary.get("swap_consistency")
    if consistency:
        prefs["both passes (inconsistent = tie)"] = consistency["combined_preference"]["counts"]
    blocks: list[Any] = []
    if summary.get("judge"):
        ident = summary["judge"]
        blocks.append(Text("Judge: " + ", ".join(f"{k} {fmt(v)}" for k, v in flatten(ident))))
    if scores:
        blocks.append(
            Figure(
                "judge_scores",
                plots.judge_scores(scores),
                "Judge scores, mean +- population SD, base vs fine-tuned",
            )
        )
        blocks.append(Table(["pass", "score", "base", "FT", "delta (FT - base)", "95% CI"], rows))
    if any(prefs.values()):
        blocks.append(
            Figure(
                "judge_preferences",
                plots.preferences(prefs),
                "Which answer the judge preferred"
                + (", per pass and with the position swap" if consistency else ""),
            )
        )
    if consistency:
        blocks.append(
            Text(
                f"Position swap: {consistency['consistent']} of {consistency['n_both']} verdicts "
                f"consistent (rate {fmt(consistency['consistency_rate'])}); position-bias rate "
                f"{fmt(consistency['position_bias_rate'])} (share of flipped verdicts that "
                "name slot A)."
            )
        )
    else:
        blocks.append(NotRun("position-swap pass (judge.swap_pass = false, as the paper)"))
    return Section("judge", "LLM judge", blocks)


def audits_section(get: Reader) -> Section:
    blocks: list[Any] = []
    table2 = get("audit-data/table2.json")
    if table2:
        splits = ("train", "test", "all")
        rows = [[k, *(fmt(table2[s].get(k)) for s in splits)] for k in table2["train"]]
        blocks += [
            Text("Table 2, structural dataset audit:"),
            Table(["metric", *splits], rows),
            Table(["train/test", "value"], [[k, fmt(v)] for k, v in table2["train_test"].items()]),
        ]
        if "eval_prompts" in table2:
            blocks.append(kv_table({"eval_prompts": table2["eval_prompts"]}))
    else:
        blocks.append(NotRun("Table 2 (audit-data)"))
    for stage, title in (("audit", "Factuality audit"), ("audit-training", "Training-data audit")):
        doc = get(f"{stage}/summary.json")
        blocks += [Text(f"{title}:"), kv_table(doc)] if doc else [NotRun(f"{title} ({stage})")]
    return Section("audits", "Audits", blocks)


def environment_section(get: Reader, manifest: dict[str, Any], fetched: dict[str, Any]) -> Section:
    """Versions, hardware and configuration from manifest.json; hub pins from
    artifacts/release.toml next to what `repro fetch` resolved for this run (fetch.json)."""
    blocks: list[Any] = []
    if manifest:
        keys = ("version", "git_commit", "profile", "overrides", "config_hash", "python")
        blocks.append(Table(["run", "value"], [[k, fmt(manifest.get(k))] for k in keys]))
        libs = manifest.get("libraries") or {}
        blocks.append(
            Table(["library", "version"], [[k, v or "not installed"] for k, v in libs.items()])
        )
        facts = {
            "hardware": manifest.get("hardware"),
            "environment": manifest.get("environment"),
            "data": manifest.get("data"),
            "warnings": manifest.get("warnings"),
        }
        blocks.append(kv_table(facts))
        blocks.append(Pre("resolved configuration", json.dumps(manifest.get("config"), indent=1)))
    else:
        blocks.append(NotRun("manifest.json"))
    pre = get("preflight/report.json")
    if pre:
        decision = pre.get("decision", {})
        blocks.append(
            Text(
                f"Preflight: device {pre.get('device', {}).get('name')}, "
                f"dtype {decision.get('dtype')}."
            )
        )
    release = tomllib.loads(RELEASE.read_text(encoding="utf-8")) if RELEASE.is_file() else {}
    rows = [
        [
            name,
            a.get("id", ""),
            a.get("revision", ""),
            fetched.get(f"{a.get('kind', '')}:{a.get('id', '')}", {}).get("commit", "-"),
        ]
        for name, a in release.items()
        if isinstance(a, dict)
    ]
    if rows:
        blocks += [
            Text(
                "Released artefacts (artifacts/release.toml) and what `repro fetch` "
                "resolved for this run (fetch.json):"
            ),
            Table(["artefact", "hub id", "pinned revision", "resolved commit"], rows),
        ]
    return Section("environment", "Environment and pinned versions", blocks)


def deviations_section() -> Section:
    doc = tomllib.loads(DEVIATIONS.read_text(encoding="utf-8"))
    rows = [
        [
            d["id"],
            d["kind"],
            d["topic"],
            d["paper"],
            d["release"],
            d["package"],
            d["option"],
            d["reason"],
        ]
        for d in doc["deviation"]
    ]
    return Section(
        "deviations",
        "Deviations ledger",
        [
            Text(
                "Where the paper and its release disagree, and where this replay differs from or "
                "chooses between them (repro/deviations.toml)."
            ),
            Table(
                [
                    "id",
                    "kind",
                    "topic",
                    "paper",
                    "release / original run",
                    "this package",
                    "option",
                    "why",
                ],
                rows,
            ),
        ],
    )
