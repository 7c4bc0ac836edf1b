"""The paper's three claims at the top of the report, each with the verify checks that bear on
it and a verdict: supported, contradicted, or not tested by this profile (with the reason).

A claim is supported when every bearing check that ran passed and at least one ran; contradicted
when a required one failed. A profile that cannot test a claim (a small model on the CPU, a judge
other than the paper's) says so even where its own mechanism checks pass: those checks are
shown, but a 135M smoke model cannot support a claim about a 7B model on 16 GB GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from advisor_repro.config import Config
from advisor_repro.report.render import Table
from advisor_repro.report.rows import Verdicts


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    checks: tuple[str, ...]  # check id stems (a ".released" variant counts as the same)


CLAIMS = (
    Claim("recipe", "Recipe: a 3-epoch QLoRA fine-tune of Mistral-7B-Instruct-v0.3 finishes "
          "across two free-tier 16 GB GPUs by handing off only the LoRA adapter and resuming "
          "with a fresh optimizer and LR schedule.",
          ("train1.steps", "train2.steps", "train.total_steps", "train1.trainable_params",
           "handoff.verified", "handoff.trainable_params", "train2.fresh_schedule",
           "train2.warmup_steps", "train1.peak_reserved", "train2.peak_reserved",
           "train1.peak_nvml", "train2.peak_nvml", "train1.wall_clock", "train2.wall_clock",
           "train1.loss_falls", "train2.ends_below_segment1", "train.loss_falls",
           "train1.loss_end", "train2.loss_end", "curve.min", "curve.segment2_rise",
           "curve.segment2_drop")),
    Claim("caution", "Caution: the fine-tuned model is closer to the synthetic references "
          "(BERTScore F1 up) but worse as an advisor (the judge prefers the base model; "
          "confident factual errors).",
          ("metrics.512.bertscore_f1.delta", "metrics.512.bertscore_f1.ci_low",
           "metrics.256.bertscore_f1.delta", "metrics.256.bertscore_f1.ci_low",
           "judge.domain.delta", "judge.help.delta", "judge.preference.base_over_ft",
           "audit.ft_errors", "audit.ft_errors_above_base")),
    Claim("data", "Data origin: the errors come from the synthetic (Gemini-generated) training "
          "data, not from the handoff.",
          ("audit_training.hard_rate", "audit_training.inclusive_rate",
           "audit_training.inclusive_at_least_hard", "audit.ft_errors")),
)  # fmt: skip


def cannot_test(claim: Claim, cfg: Config) -> str:
    """Why this profile cannot test the claim, or ""."""
    if claim.id == "recipe" and cfg.model.source != "hub":
        return (f"this profile trains {cfg.model.source} weights, not Mistral-7B on a 16 GB GPU; "
                "its checks test the mechanism only")  # fmt: skip
    if claim.id != "recipe" and cfg.judge.backend not in ("anthropic", "replay"):
        return (f"judge backend differs from the paper's ({cfg.judge.backend}); "
                "its checks test the code path only")  # fmt: skip
    if claim.id == "data" and cfg.judge.backend == "replay":
        return "the release holds no training-data audit; it needs the paper's judge"
    return ""


def verdict(claim: Claim, cfg: Config, verdicts: Verdicts) -> tuple[str, str, str]:
    """(verdict, CSS class, the checks in words)."""
    found = [c for _, c in verdicts.found([("", s) for s in claim.checks])]
    ran = [c for c in found if c["status"] != "SKIP"]
    failed = [c["id"] for c in ran if c["status"] == "FAIL" and c["required"]]
    passed = [c["id"] for c in ran if c["status"] == "PASS"]
    listed = (", ".join(f"{c['id']} {c['status']}" for c in found) or "none in this profile's "
              "expected file")  # fmt: skip
    reason = cannot_test(claim, cfg)
    if verdicts.record is None:
        return "not tested: verify not run (repro verify)", "SKIP", listed
    if reason:
        return f"not tested by this profile: {reason}", "SKIP", listed
    if failed:
        return "contradicted: " + ", ".join(failed) + " failed", "FAIL", listed
    if not ran:
        why = found[0]["why"] if found else "no check of this profile bears on it"
        return f"not tested by this profile: {why}", "SKIP", listed
    origin = (" (from the paper's released files: recomputed, not re-run)"
              if all(c["id"].endswith(".released") for c in ran) else "")  # fmt: skip
    part = f" ({len(passed)} of {len(found)} checks ran)" if len(ran) < len(found) else ""
    return f"supported{origin}{part}", "PASS", listed


def claims_table(cfg: Config, record: dict[str, Any] | None) -> Table:
    verdicts = Verdicts(record)
    rows, classes = [], []
    for claim in CLAIMS:
        text, cls, listed = verdict(claim, cfg, verdicts)
        rows.append([claim.text, text, listed])
        classes.append(cls)
    return Table(["claim of the paper", "verdict", "checks that bear on it"], rows, classes)
