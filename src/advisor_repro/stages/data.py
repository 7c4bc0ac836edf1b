"""Stage `data`: load the dataset, validate every record, render the training text, draw the
evaluation prompts.

A door into the data wing (advisor_repro.data): the loader (`load_splits`: hub, bundled smoke
set, stand-in, local folder) and `fingerprint`, which audit-data reads too, and the records'
pure core (`validate`, `render_training_text`, `draw_eval_prompts`, `check_sizes`).
"""

from __future__ import annotations

from pathlib import Path

from advisor_repro.config import Config
from advisor_repro.data import (
    SPLITS,
    Fingerprint,
    check_sizes,
    check_source,
    draw_eval_prompts,
    fingerprint,
    load_splits,
    render_training_text,
    source_caches,
    source_inputs,
    validate,
)
from advisor_repro.files import write_json, write_jsonl
from advisor_repro.manifest import update_manifest
from advisor_repro.models import hub as models
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult


def run(cfg: Config, ctx: StageContext) -> StageResult:
    splits, provenance = load_splits(cfg.data)
    for split in SPLITS:
        validate(split, splits[split])
    out = ctx.out
    for split in SPLITS:
        write_jsonl(out / f"{split}.jsonl", splits[split])
        write_jsonl(
            out / f"{split}_text.jsonl",
            (
                {"index": i, "text": render_training_text(r, cfg.data)}
                for i, r in enumerate(splits[split])
            ),
        )
    prompts = draw_eval_prompts(splits["test"], cfg.data.eval_prompts, cfg.data.eval_draw_seed)
    write_jsonl(out / "eval_prompts.jsonl", prompts)
    if "planted" in provenance:
        write_jsonl(out / "planted_errors.jsonl", provenance.pop("planted"))
    fp = Fingerprint(source=provenance["source"], revision=provenance["revision"],
                     splits=fingerprint(splits))
    write_json(out / "fingerprint.json", fp)
    update_manifest(ctx.run_dir, "data", fp)
    return StageResult(
        figures={
            "train": len(splits["train"]),
            "test": len(splits["test"]),
            "eval_prompts": len(prompts),
            "revision": provenance["revision"],
        },
        warnings=check_sizes(splits, cfg.data),
    )


def external_inputs(cfg: Config) -> dict[str, str]:
    """A local source folder is an input: editing a file there makes this stage stale."""
    return source_inputs(cfg.data)


def check(cfg: Config, ctx: StageContext) -> None:
    """Before data/ is touched: a local source must be an existing folder."""
    check_source(cfg.data)


def caches(cfg: Config) -> dict[str, Path]:
    """The hub cache, for a dataset the hub supplies."""
    return source_caches(cfg.data)


def estimate(cfg: Config) -> Estimate:
    remote = cfg.data.source.startswith("hf:")
    return Estimate(seconds=30 if remote else 5, disk_bytes=(60 if remote else 5) * 2**20)


STAGE = Stage(
    name="data",
    summary="load + validate the dataset, render training text, draw the 50 eval prompts",
    run=run,
    config=("data",),
    external=external_inputs,
    estimate=estimate,
    check=check,
    caches=caches,
    prerequisites=lambda cfg: list(models.dataset_unavailable(cfg.data.source,
                                                              cfg.data.revision)),
)
