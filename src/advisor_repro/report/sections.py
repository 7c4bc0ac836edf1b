"""The report's sections, built from a run directory's files (a reader: run-relative path ->
parsed JSON, or None when absent). Each section draws what the run has and says "not run"
otherwise. Rendering is advisor_repro.report.render; the stage is advisor_repro.stages.report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from advisor_repro.config import Config
from advisor_repro.expected import fmt
from advisor_repro.report import (
    curves,
    data_tables,
    eval_tables,
    glance,
    plots,
    verify_record,
    verify_table,
)
from advisor_repro.report.render import Figure, Folded, NotRun, Pre, Section, Table, Text
from advisor_repro.report.rows import Verdicts, table
from advisor_repro.report.verify_table import GB_PER_GIB

SEGMENTS = ("train-1", "train-2")
Reader = Callable[[str], Any]


def flatten(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Scalar leaves of a JSON document as (dotted key, value); long lists are summarised."""
    if isinstance(node, dict):
        return [kv for k, v in node.items() for kv in flatten(v, f"{prefix}{k}.")]
    if isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        return [(prefix.rstrip("."), f"{len(node)} records")]
    return [(prefix.rstrip("."), node)]


# ---- sections -------------------------------------------------------------------------------
def verify_section(get: Reader) -> Section:
    """The checks that ran, by the paper's section (FAIL, then PASS); the skipped ones folded
    by reason; how each value is read and why each range, collapsed."""
    record = verify_record.read(get("verify/verify.json"))
    title = "Verify: this run against the paper"
    if not record:
        return Section("verify", title, [NotRun("verify (repro verify)")])
    n = record.counts
    blocks: list[Any] = [Text(
        f"{n['PASS']} passed, {n['FAIL']} failed, {n['SKIP']} skipped, against "
        f"{record.expected}"
        f"{' (strict: a skipped required check fails)' if record.strict else ''}. "
        "Memory in GiB (the paper's GB converted beside it).")]  # fmt: skip
    for name, checks in verify_table.grouped(record):
        blocks += [Text(f"{name}:"), Table(verify_table.HEADER,
                                           [verify_table.cells(c) for c in checks],
                                           [c["status"] for c in checks], kind="verify")]
    folded = verify_table.folded(record)
    if folded:
        blocks.append(Text("Skipped checks, by reason (open a line for the checks):"))
        blocks += [Folded(f"{len(ids)} skipped: {why}", [("checks", ", ".join(ids))])
                   for why, ids in folded]  # fmt: skip
    blocks.append(Pre(
        "How each value is read (run file and key), and why each range",
        "Classes: " + "; ".join(f"{k}: {v}" for k, v in record.classes.items()) + "\n\n"
        + "\n".join(f"{c['id']} ({c['class']}, reads {c['read']}): {c['reason']}"
                    for c in record.checks)))  # fmt: skip
    return Section("verify", title, blocks)


def _at(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def raw(summary: str, doc: Any) -> Pre:
    """A stage output's raw values, collapsed under the tables."""
    return Pre(summary, json.dumps(doc, indent=1, sort_keys=True, default=str))


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
    ]
    summaries = {s: get(f"{s}/summary.json") for s in (*SEGMENTS, "control")}
    used = sorted({v["dtype"] for v in summaries.values() if v and v.get("dtype")})
    blocks.insert(1, data_tables.table3_table(cfg, verdicts, " / ".join(used)))
    blocks += [
        Text("The two phases (P100 then T4 in the paper):"),
        table(data_tables.phase_rows(summaries, cfg), verdicts, "phase"),
    ]
    pre = get("preflight/report.json")
    devices = {s: glance.gpu_name(v, pre) for s, v in summaries.items() if v}
    blocks += curves.loss_blocks(steps, control, devices)
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


def peak_memory_gib(summary: dict[str, Any]) -> dict[str, float]:
    """A segment summary's `memory_peak` in GiB: torch allocated / reserved and NVML used on a
    GPU; the process's resident memory on the CPU (labelled so)."""
    peak = summary.get("memory_peak") or {}
    out = {}
    for key, v in peak.items():
        if isinstance(v, int | float) and not isinstance(v, bool) and key.endswith("_gib"):
            label = key.removesuffix("_gib").replace("_", " ")
            out[label if summary.get("device") != "cpu" else f"{label} (CPU process)"] = v
    return out


def memory_section(get: Reader, cfg: Config) -> Section:
    pre = get("preflight/report.json")
    summaries = {s: get(f"{s}/summary.json") or {} for s in SEGMENTS}
    per_seg = {f"{s}\n{glance.gpu_name(v, pre)}": peak_memory_gib(v)
               for s, v in summaries.items()}  # fmt: skip
    per_seg = {s: v for s, v in per_seg.items() if v}
    budget = cfg.hardware.vram_budget_gib
    title = "Peak memory per segment (GiB)"
    if not per_seg:
        return Section("memory", title, [
            NotRun("peak memory (no segment summary with memory_peak: training not run)")])
    band = (11.4 / GB_PER_GIB, 12.1 / GB_PER_GIB,
            "paper: NVML used during training, 11.4-12.1 GB (10.62-11.27 GiB)")
    png = plots.memory_bars(per_seg, {f"16 GB class ({16 / GB_PER_GIB:.2f} GiB)": 16 / GB_PER_GIB,
                                      f"this profile's budget ({budget:g} GiB)": budget},
                            band)  # fmt: skip
    paper = {"train-1": verify_table.paper_gib("11.4-11.6 GB (P100)"),
             "train-2": verify_table.paper_gib("11.9-12.1 GB (T4)")}
    rows = [[seg, paper[seg], ", ".join(f"{k} {v:.2f} GiB" for k, v in
                                        peak_memory_gib(summaries[seg]).items()) or "not run"]
            for seg in SEGMENTS]  # fmt: skip
    return Section("memory", title, [
        Figure("memory", png,
               "Peak memory per segment (GiB) against the 16 GB class, the profile's budget and "
               "the paper's NVML readings (band). The paper's '15.888 / 14.741 GB' are device "
               "capacities, not peaks (deviations: peak-memory-capacity)."),
        Text("GPU memory in use during training: the paper's NVML readings (its W&B system "
             "logs) beside this run's peaks."),
        Table(["segment", "paper (NVML during training)", "this run (peak)"], rows),
    ])  # fmt: skip


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


PAPER_JUDGE = {"domain": {"base": 2.14, "ft": 1.74}, "help": {"base": 2.14, "ft": 1.82}}


def paper_means(panels: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """The paper's base / FT means for the panels it reports (a metric at 256 or 512 tokens),
    from repro/expected/paper.toml."""
    keys = {"BERTScore F1": "bertscore_f1", "ROUGE-L F1": "rouge_l_f1"}
    out = {}
    for title in panels:
        metric, _, cap = title.partition(" @ ")
        cap = cap.removesuffix(" tokens")
        if metric in keys:
            vals = {m: glance.paper_values().get(f"metrics.{cap}.{keys[metric]}.{m}")
                    for m in ("base", "ft")}  # fmt: skip
            if all(isinstance(v, int | float) for v in vals.values()):
                out[title] = vals
    return out


def metrics_section(get: Reader, cfg: Config, verdicts: Verdicts) -> Section:
    blocks: list[Any] = eval_tables.metrics_tables(get, cfg, verdicts)
    panels = _per_item_panels(get("metrics/per_item.jsonl") or [])
    if panels:
        blocks.append(
            Figure(
                "metrics",
                plots.distributions(panels, paper_means(panels)),
                "Per-item reference metrics, base vs fine-tuned, per token cap; black diamonds: "
                "the paper's means where it reports that metric at that cap",
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
                plots.judge_scores(scores, PAPER_JUDGE),
                "Judge scores (0-3), mean ± population SD, base vs fine-tuned; black diamonds: "
                "the paper's means (Table 4)",
            )
        )
    if any(prefs.values()):
        prefs["paper (one pass, Table 4)"] = {"base": 23, "ft": 9, "tie": 18}
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
