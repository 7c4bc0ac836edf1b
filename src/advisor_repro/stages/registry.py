"""The registry as data: every stage, in the paper's order. `repro all` runs it top to bottom;
verify and report stay the last two, since they read whatever the stages before them wrote."""

from __future__ import annotations

from advisor_repro.stages import (
    audit,
    audit_data,
    audit_training,
    control,
    data,
    generate,
    handoff,
    judge,
    metrics,
    preflight,
    report,
    train,
    verify,
)
from advisor_repro.stages.contract import Stage

STAGES: list[Stage] = [
    preflight.STAGE,
    data.STAGE,
    audit_data.STAGE,
    train.STAGE_1,
    handoff.STAGE,
    train.STAGE_2,
    control.STAGE,
    generate.STAGE,
    metrics.STAGE,
    judge.STAGE,
    audit.STAGE,
    audit_training.STAGE,
    verify.STAGE,
    report.STAGE,
]
