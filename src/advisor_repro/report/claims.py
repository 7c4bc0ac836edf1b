"""The paper's three claims at the top of the report, each with the verify checks that bear on
it and a state: tested (and supported), partly tested, not tested (with the reason), or
contradicted.

A claim is tested when every bearing check ran and passed, partly tested when some were
skipped; contradicted when a required one failed. A profile that cannot test a claim (a small
model on the CPU, a judge other than the paper's) says so even where its own mechanism checks
pass: those checks are shown, but a 135M smoke model cannot support a claim about a 7B model
on 16 GB GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor_repro.config import Config
from advisor_repro.expected import CheckRow
from advisor_repro.report import verify_table
from advisor_repro.report.render import Table
from advisor_repro.report.rows import Verdicts
from advisor_repro.report.verify_record import VerifyRecord


@dataclass(frozen=True)
class Claim:
    id: str
    name: str  # a few words, for the headline
    text: str
    checks: tuple[str, ...]  # check id stems (a ".released" variant counts as the same)


CLAIMS = (
    Claim("recipe", "1. the two-GPU recipe",
          "Recipe: a 3-epoch QLoRA fine-tune of Mistral-7B-Instruct-v0.3 finishes "
          "across two free-tier 16 GB GPUs by handing off only the LoRA adapter and resuming "
          "with a fresh optimizer and LR schedule.",
          ("train1.steps", "train2.steps", "train.total_steps", "train1.trainable_params",
           "handoff.verified", "handoff.trainable_params", "train2.fresh_schedule",
           "train2.warmup_steps", "train1.peak_reserved", "train2.peak_reserved",
           "train1.peak_nvml", "train2.peak_nvml", "train1.wall_clock", "train2.wall_clock",
           "train1.loss_falls", "train2.ends_below_segment1", "train.loss_falls",
           "train1.loss_end", "train2.loss_end", "curve.min", "curve.segment2_rise",
           "curve.segment2_drop")),
    Claim("caution", "2. the caution (closer to references, worse advisor)",
          "Caution: the fine-tuned model is closer to the synthetic references "
          "(BERTScore F1 up) but worse as an advisor (the judge prefers the base model; "
          "confident factual errors).",
          ("metrics.512.bertscore_f1.delta", "metrics.512.bertscore_f1.ci_low",
           "metrics.256.bertscore_f1.delta", "metrics.256.bertscore_f1.ci_low",
           "judge.domain.delta", "judge.help.delta", "judge.preference.base_over_ft",
           "audit.ft_errors", "audit.ft_errors_above_base")),
    Claim("data", "3. errors from the synthetic data",
          "Data origin: the errors come from the synthetic (Gemini-generated) training "
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


def skip_reason(skipped: list[CheckRow]) -> str:
    """The commonest reason among skipped checks, said once."""
    whys = [verify_table.reason_words(c["why"]) for c in skipped]
    return max(dict.fromkeys(whys), key=whys.count) if whys else ""


@dataclass(frozen=True)
class ClaimLine:
    claim: Claim
    state: str  # tested | partly tested | not tested | contradicted
    ran: tuple[str, ...]  # ids of the bearing checks that ran
    bearing: int  # bearing checks in this profile's expected file
    why: str  # why not (fully) tested, or which checks failed

    def text(self) -> str:
        name, n = self.claim.name, len(self.ran)
        if self.state == "tested":
            return f"{name}: tested and supported, {n} of {self.bearing} checks passed"
        if self.state == "contradicted":
            return f"{name}: contradicted, {self.why}"
        if self.state == "partly tested":
            return (f"{name}: partly tested, {n} of {self.bearing} checks ran and passed "
                    f"({self.why})")  # fmt: skip
        mech = f"; {n} of its checks ran and passed" if n else ""
        return f"{name}: not tested ({self.why}{mech})"


def assess(claim: Claim, cfg: Config, verdicts: Verdicts) -> ClaimLine:
    """Tested (every bearing check ran and passed), partly tested, not tested (the reason), or
    contradicted (a required bearing check failed)."""
    found = [c for _, c in verdicts.found([("", s) for s in claim.checks])]
    ran = [c for c in found if c["status"] != "SKIP"]
    failed = [c["id"] for c in ran if c["status"] == "FAIL" and c["required"]]
    ids = tuple(c["id"] for c in ran)
    reason = cannot_test(claim, cfg)
    if verdicts.record is None:
        return ClaimLine(claim, "not tested", (), 0, "verify not run: repro verify")
    if reason:  # a profile that cannot test the claim: its checks, failed or not, say nothing
        return ClaimLine(claim, "not tested", ids, len(found), reason)
    if failed:
        return ClaimLine(claim, "contradicted", ids, len(found), ", ".join(failed) + " failed")
    if not ran:
        why = skip_reason(found) if found else "no check of this profile bears on it"
        return ClaimLine(claim, "not tested", (), len(found), why)
    if len(ran) < len(found):
        skipped = [c for c in found if c["status"] == "SKIP"]
        return ClaimLine(claim, "partly tested", ids, len(found),
                         f"the rest skipped: {skip_reason(skipped)}")  # fmt: skip
    return ClaimLine(claim, "tested", ids, len(found), "")


CSS = {"tested": "PASS", "partly tested": "PARTIAL", "not tested": "SKIP", "contradicted": "FAIL"}


def verdict(claim: Claim, cfg: Config, verdicts: Verdicts) -> tuple[str, str, str]:
    """(the claim's line, CSS class, the checks that ran in words)."""
    line = assess(claim, cfg, verdicts)
    origin = (" (from the paper's released files: recomputed, not re-run)"
              if line.ran and all(i.endswith(".released") for i in line.ran) else "")  # fmt: skip
    ran = ", ".join(line.ran) or "none"
    return line.text().removeprefix(claim.name + ": ") + origin, CSS[line.state], ran


def claims_table(cfg: Config, record: VerifyRecord | None) -> Table:
    verdicts = Verdicts(record)
    rows, classes = [], []
    for claim in CLAIMS:
        text, cls, ran = verdict(claim, cfg, verdicts)
        rows.append([claim.text, text, ran])
        classes.append(cls)
    return Table(["claim of the paper", "verdict", "checks that ran"], rows, classes,
                 kind="claims")
