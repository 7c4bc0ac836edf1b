"""The report's sections, built from a run directory's files (a reader: run-relative path ->
parsed JSON, or None when absent). Each section draws what the run has and says "not run"
otherwise. Rendering is advisor_repro.report.render; the stage is advisor_repro.stages.report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advisor_repro.config import Config
from advisor_repro.expected import fmt, with_unit
from advisor_repro.report import claims, curves, data_tables, eval_tables, plots
from advisor_repro.report.render import Figure, NotRun, Pre, Section, Table, Text
from advisor_repro.report.rows import Verdicts, table

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


def _at(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def raw(summary: str, doc: Any) -> Pre:
    """A stage output's raw values, collapsed under the tables."""
    return Pre(summary, json.dumps(doc, indent=1, sort_keys=True, default=str))


def claims_section(cfg: Config, record: dict[str, Any] | None) -> Section:
    return Section("claims", "The paper's claims", [
        Text("Each claim of the paper with the checks of verify that bear on it. A profile that "
             "cannot test a claim says why (the smoke replay tests the code path, not the "
             "paper's numbers)."),
        claims.claims_table(cfg, record),
    ])  # fmt: skip


def data_section(get: Reader, cfg: Config, verdicts: Verdicts) -> Section:
    blocks: list[Any] = data_tables.table1_blocks(get, cfg, verdicts)
    blocks += [Text("Table 2, structural dataset audit (train 2,274 / test 402 in the paper):"),
               table(data_tables.table2_rows(get("audit-data/table2.json"), cfg), verdicts,
                     "metric")]  # fmt: skip
    for rel in ("audit-data/table1.json", "audit-data/table2.json"):
        doc = get(rel)
        if doc:
            shown = {k: v for k, v in doc.items() if k != "items"}
            blocks.append(raw(f"raw values: {rel}" + (" (per-item assignments left out)"
                                                     if "items" in doc else ""), shown))
    return Section("data", "Data: Tables 1 and 2", blocks)


def training_section(get: Reader, cfg: Config, verdicts: Verdicts) -> Section:
    steps = {s: get(f"{s}/steps.jsonl") for s in SEGMENTS}
    control = get("control/steps.jsonl")
    blocks: list[Any] = [
        Text("Table 3, LoRA and fine-tuning hyperparameters: the paper's against this run's "
             "resolved configuration (the named recipe options shown)."),
        data_tables.table3_table(cfg, verdicts),
    ]
    summaries = {s: get(f"{s}/summary.json") for s in (*SEGMENTS, "control")}
    blocks += [
        Text("The two phases (P100 then T4 in the paper):"),
        table(data_tables.phase_rows(summaries, cfg), verdicts, "phase"),
    ]
    blocks += curves.loss_blocks(steps, control)
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
        blocks += [Text("Control (continuous 3 epochs) vs the two segments:"),
                   control_table(shown), raw("raw values: control/comparison.json", shown)]
    for name, doc in summaries.items():
        if doc:
            blocks.append(raw(f"raw values: {name}/summary.json", doc))
    return Section("training", "Training: Table 3, the phases, the loss across the handoff",
                   blocks)


def control_table(c: dict[str, Any]) -> Table:
    """The handoff path (segments 1 + 2) beside the continuous control run (beyond the paper)."""
    def four(x: Any) -> str:
        return f"{x:.4f}" if isinstance(x, int | float) and not isinstance(x, bool) else "-"

    steps = c.get("optimizer_steps") or {}
    hand = c.get("segment2_start_vs_segment1_end") or {}
    held = c.get("heldout_loss") or {}
    rows = [
        ["final training loss", four(_at(c, "final_train_loss.handoff")),
         four(_at(c, "final_train_loss.control")), "-"],
        ["held-out loss (test split)", four(held.get("handoff")), four(held.get("control")),
         four(held.get("delta"))],
        ["optimizer steps", f"{fmt(steps.get('segment1'))} + {fmt(steps.get('segment2'))}",
         fmt(steps.get("control")), "-"],
        ["sequences seen", fmt(_at(c, "sequences_seen.handoff")),
         fmt(_at(c, "sequences_seen.control")), "-"],
        ["loss at the handoff: segment 1 end -> segment 2 start",
         f"{four(hand.get('segment1_end'))} -> {four(hand.get('segment2_start'))}", "-", "-"],
    ]  # fmt: skip
    return Table(["figure", "handoff path (segments 1 + 2)",
                  f"control (one run, {c.get('control_recipe', '?')} recipe)",
                  "handoff - control"], rows)  # fmt: skip


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
    paper = {"train-1": "about 11.4-11.6 GB (P100)", "train-2": "about 11.9-12.1 GB (T4)"}
    rows = [[seg, paper[seg], ", ".join(f"{k} {v:.2f} GB" for k, v in per_seg.get(seg, {}).items())
             or "not run"] for seg in SEGMENTS]  # fmt: skip
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
            Text("GPU memory in use during training: the paper's NVML readings (its W&B system "
                 "logs) beside this run's peaks."),
            Table(["segment", "paper (NVML during training)", "this run (peak)"], rows),
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


def metrics_section(get: Reader, cfg: Config, verdicts: Verdicts) -> Section:
    blocks: list[Any] = eval_tables.metrics_tables(get, cfg, verdicts)
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
        shown = dict(summary)
        if isinstance(shown.get("bertscore"), dict):  # the hash names the model, not its folder
            shown["bertscore"] = {**shown["bertscore"], "hash": eval_tables.bertscore_identity(
                summary).rpartition("hash ")[2]}
        blocks.append(raw("raw values: metrics/summary.json", shown))
    return Section("metrics", "Reference metrics: Table 5 and the 256-token table", blocks)


def judge_section(get: Reader, cfg: Config, verdicts: Verdicts) -> Section:
    summary = get("judge/summary.json")
    blocks: list[Any] = eval_tables.judge_table(get, cfg, verdicts)
    if not summary:
        missing = NotRun("judge (judge/summary.json absent)")
        return Section("judge", "LLM judge: Table 4", [*blocks, missing])
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    prefs: dict[str, dict[str, int]] = {}
    for name in ("primary", "swap"):
        p = summary.get(name)
        if not isinstance(p, dict):
            continue
        for metric, s in (p.get("scores") or {}).items():
            if s:
                scores[f"{metric} ({name})"] = {
                    m: (s[m]["mean"], s[m]["sd"]) for m in ("base", "ft")
                }
        prefs[f"{name} pass"] = (p.get("preference") or {}).get("counts", {})
    consistency = summary.get("swap_consistency")
    if consistency:
        prefs["both passes (inconsistent = tie)"] = consistency["combined_preference"]["counts"]
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
    blocks.append(raw("raw values: judge/summary.json", summary))
    return Section("judge", "LLM judge: Table 4", blocks)


def audits_section(get: Reader, cfg: Config, verdicts: Verdicts) -> Section:
    blocks: list[Any] = eval_tables.audit_tables(get, cfg, verdicts)
    for rel in ("audit/summary.json", "audit-training/summary.json"):
        doc = get(rel)
        if doc:
            blocks.append(raw(f"raw values: {rel}", doc))
    return Section("audits", "Audits: factuality and training data", blocks)
