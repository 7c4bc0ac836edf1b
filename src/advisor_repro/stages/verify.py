"""Stage `verify`: every expected range (repro/expected/<profile>.toml) against this run.

Prints the table and writes verify/verify.json + verify.md: check, paper value, this run's
value, accepted range, PASS / FAIL / SKIP with the reason. A check whose stage has not run (or
whose conditions do not hold, e.g. another judge than the paper's) is SKIP, never FAIL, so the
stage works on any subset of stages, including a run made only by `repro import-release`.
When a required check fails (with verify.strict, also when one is skipped) the stage raises
VerifyFailed (exit 11) after writing its files; the pipeline then leaves no completion record,
so the next `repro verify` checks again instead of skipping a failed verdict.

Examples:
  repro verify                                  # the latest run, its profile's expected file
  repro verify --profile paper --run-dir runs/paper --set verify.strict=true
  (a --set without --profile is added to the run's recorded profile and overrides)
"""

from __future__ import annotations

from pathlib import Path

from advisor_repro.config import Config
from advisor_repro.errors import VerifyFailed
from advisor_repro.expected import (
    CLASSES,
    EXPECTED_DIR,
    FAIL,
    PASS,
    SKIP,
    Outcome,
    RunFiles,
    evaluate,
    expected_path,
    fmt,
    load_expected,
)
from advisor_repro.files import atomic_write_text, sha256_file, write_json
from advisor_repro.report import verify_table
from advisor_repro.report.headline import headline
from advisor_repro.report.verify_record import VerifyRecord
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult

# Every stage output an expected entry may read (the contract files of DESIGN.md). Declared, so
# a change in any of them makes verify stale; a missing one only turns its checks into SKIP.
RUN_FILES = (
    "data/fingerprint.json",
    "data/eval_prompts.jsonl",
    "audit-data/table2.json",
    "audit-data/table1.json",
    "train-1/summary.json",
    "train-1/steps.jsonl",
    "handoff/verified.json",
    "train-2/summary.json",
    "train-2/steps.jsonl",
    "control/summary.json",
    "control/comparison.json",
    "generate/answers.jsonl",
    "generate/summary.json",
    "metrics/summary.json",
    "judge/summary.json",
    "audit/summary.json",
    "audit-training/summary.json",
)


def expected_name(cfg: Config) -> str:
    return cfg.verify.expected or cfg.run.name


def _shown(path: Path) -> str:
    """The expected file as the reader knows it: repro/expected/paper.toml, else the full path."""
    try:
        return path.resolve().relative_to(EXPECTED_DIR.parents[1]).as_posix()
    except ValueError:
        return str(path)


def verdict(outcomes: list[Outcome], strict: bool) -> list[Outcome]:
    """The outcomes that fail the run: required FAILs, and required SKIPs when strict."""
    bad = (FAIL, SKIP) if strict else (FAIL,)
    return [o for o in outcomes if o.check.required and o.status in bad]


def run(cfg: Config, ctx: StageContext) -> StageResult:
    path = expected_path(expected_name(cfg))
    checks = load_expected(str(path), RUN_FILES)
    files = RunFiles(ctx.run_dir)
    outcomes = [evaluate(c, files, cfg) for c in checks]
    failing = verdict(outcomes, cfg.verify.strict)
    counts = {s: sum(o.status == s for o in outcomes) for s in (PASS, FAIL, SKIP)}
    record = VerifyRecord(
        expected=_shown(path),
        expected_sha256=sha256_file(path),
        strict=cfg.verify.strict,
        ok=not failing,
        counts=counts,
        failing=[o.check.id for o in failing],
        checks=[o.to_json() for o in outcomes],
        classes=CLASSES,
    )
    record.headline = headline(cfg, record).to_json()
    write_json(ctx.out / "verify.json", record.to_json())
    atomic_write_text(ctx.out / "verify.md", verify_table.markdown(record))
    print(verify_table.console(record), flush=True)
    if failing:
        raise VerifyFailed(failure_text(failing, cfg.verify.strict), fix_text(ctx.run_dir))
    return StageResult(figures={"pass": counts[PASS], "fail": counts[FAIL], "skip": counts[SKIP]})


def failure_text(failing: list[Outcome], strict: bool) -> str:
    parts = []
    for o in failing:
        seen = fmt(o.value) if o.status == FAIL else "skipped"
        parts.append(f"{o.check.id} (this run {seen}; {o.why})")
    what = "failed or were skipped (strict)" if strict else "failed"
    return f"{len(failing)} required check(s) against the paper {what}: " + "; ".join(parts)


def fix_text(run_dir: Path) -> str:
    return (
        f"read {run_dir}/verify/verify.md (each check gives its range and why); "
        f"`repro report --run-dir {run_dir}` renders the full report with this table"
    )


def external_inputs(cfg: Config) -> dict[str, str]:
    """The expected file is an input: editing a range makes verify stale."""
    path = expected_path(expected_name(cfg))
    return {"expected": sha256_file(path) if path.is_file() else "missing"}


def check(cfg: Config, ctx: StageContext) -> None:
    """Before verify/ is touched: the expected file parses (ConfigError names it and the fix)."""
    load_expected(str(expected_path(expected_name(cfg))), RUN_FILES)


STAGE = Stage(
    name="verify",
    summary="check every paper number against its expected range: PASS / FAIL / SKIP "
    "(exit 11 on a FAIL)",
    run=run,
    optional=RUN_FILES,
    # conditions of the expected entries read config values (judge.backend, the recipe...)
    config=("model", "data", "train", "generate", "metrics", "judge", "audit", "verify"),
    external=external_inputs,
    estimate=lambda cfg: Estimate(seconds=2),
    check=check,
)
