"""Stage `handoff`: turn segment 1's adapter into the handoff bundle, then verify it the way
segment 2 will.

Writes handoff/bundle/ (advisor_repro.training.handoff.make_bundle) and handoff/verified.json,
the record of the load check that training/handoff_load.py runs in a fresh Python process.
"""

from __future__ import annotations

from advisor_repro.config import Config
from advisor_repro.errors import HandoffError
from advisor_repro.files import read_json, sha256_file, write_json
from advisor_repro.models import hub as models
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult
from advisor_repro.training.handoff import (
    RERUN_FIX,
    SegmentFacts,
    expected_from_config,
    make_bundle,
)
from advisor_repro.training.handoff_load import verify_in_fresh_process

ADAPTER = "train-1/adapter"
SUMMARY = "train-1/summary.json"
TRAIN_TEXT = "data/train_text.jsonl"


def run(cfg: Config, ctx: StageContext) -> StageResult:
    adapter = ctx.input(ADAPTER)
    try:
        # the keys the bundle copies; make_bundle names any that are missing
        summary: SegmentFacts = read_json(ctx.input(SUMMARY))
    except ValueError as exc:
        raise HandoffError(
            f"{SUMMARY} is not valid JSON ({exc})", "rerun `repro train --segment 1`"
        ) from exc
    handoff = make_bundle(adapter, summary, ctx.out / "bundle")
    base_dir, base_revision = models.base_model(cfg.model)
    expected = expected_from_config(
        cfg, cfg.model.train_base, base_revision, sha256_file(ctx.input(TRAIN_TEXT))
    )
    write_json(ctx.out / "expected.json", expected)
    verified = verify_in_fresh_process(ctx.out / "bundle", base_dir, ctx.out / "expected.json")
    write_json(ctx.out / "verified.json", verified)
    if not verified["ok"]:
        failed = verified["checks"][-1]
        raise HandoffError(failed["detail"], failed.get("fix", RERUN_FIX))
    return StageResult(
        figures={
            "trainable": verified["trainable_params_loaded"],
            "steps": handoff["optimizer_steps"],
            "files": len(handoff["files"]),
            "verified": True,
        },
        warnings=_left_out_warning(handoff["left_out"]),
    )


def _left_out_warning(left_out: list[str]) -> list[str]:
    """PEFT's model card (README.md) is always left out; anything else is worth a line."""
    if set(left_out) - {"README.md"}:
        return [f"not copied into the bundle (not adapter or tokenizer): {', '.join(left_out)}"]
    return []


# ---- registration -------------------------------------------------------------------------------
def estimate(cfg: Config) -> Estimate:
    smoke = cfg.model.source == "smoke"
    adapter_bytes = (cfg.train.lora.expected_trainable or 42_000_000) * 4  # fp32 LoRA tensors
    return Estimate(seconds=30 if smoke else 240, disk_bytes=adapter_bytes + 20 * 2**20)


STAGE = Stage(
    name="handoff",
    summary="adapter-only handoff bundle from segment 1 (hashes, LoRA config, counts), "
    "verified by loading it in a fresh process",
    run=run,
    needs=(ADAPTER, SUMMARY, TRAIN_TEXT),
    config=("model", "train.lora"),
    estimate=estimate,
    caches=lambda cfg: models.base_model_caches(cfg.model, "train"),
    prerequisites=lambda cfg: list(models.base_unavailable(cfg.model, "train")),
)
