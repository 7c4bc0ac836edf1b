"""Stage `report`: one self-contained HTML file (report/report.html) and its Markdown twin
(report/report.md + report/figures/*.png) of everything the run holds.

Under the headline (REPRODUCED / PARTIAL / MECHANISM ONLY / FAIL, report.headline, the words
`repro verify` prints), sections in order: at a glance (the paper's three claims, tested or
not, a summary card, what to run next); the verify table by the paper's section; Tables 1
and 2 (data); Table 3 and the phase table with the loss across the handoff, the paper's
released curves and the control overlaid; peak memory against the 16 GB line and the paper's
NVML readings; Table 5 and the 256-token table with the metric distributions; Table 4 (the
judge); the factuality and training-data audits; environment and pinned versions; the
deviations ledger (repro/deviations.toml). Each paper table is set out as the paper prints it:
paper | this run | expected range | verdict (advisor_repro.report.rows); raw values sit in
collapsed <details>. Every part is drawn from whatever stages exist and says "not run"
otherwise, so the report renders on a partial run, on an imported release, and after a failed
verify (it reads verify/verify.json even then). No absolute path of the machine reaches either
file (report.render.drop_paths), so a report can be shared.

manifest.json and fetch.json describe the run directory rather than a stage's output; they are
read without being declared, because every `repro` invocation rewrites the manifest and would
otherwise make the report stale after each command.

Examples:
  repro report                      # the latest run
  repro report --run-dir runs/paper
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advisor_repro.config import Config
from advisor_repro.files import (
    atomic_write_bytes,
    atomic_write_text,
    read_json,
    read_jsonl,
    sha256_file,
)
from advisor_repro.report import curves, environment, glance, headline, verify_record
from advisor_repro.report import sections as sections_of
from advisor_repro.report.render import (
    NotRun,
    drop_paths,
    figures,
    redact,
    render_html,
    render_markdown,
    secret_values,
)
from advisor_repro.report.rows import Verdicts
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult

INPUTS = (
    "verify/verify.json",
    "preflight/report.json",
    "data/fingerprint.json",
    "audit-data/table2.json",
    "audit-data/table1.json",
    "train-1/steps.jsonl",
    "train-1/summary.json",
    "handoff/verified.json",
    "train-2/steps.jsonl",
    "train-2/summary.json",
    "control/steps.jsonl",
    "control/summary.json",
    "control/comparison.json",
    "metrics/per_item.jsonl",
    "metrics/summary.json",
    "judge/summary.json",
    "audit/summary.json",
    "audit-training/summary.json",
)


class Run:
    """Tolerant reads of the run directory: a missing or unreadable file is None."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    def get(self, rel: str) -> Any:
        if rel not in self.ctx.needs and rel not in self.ctx.optional:
            raise RuntimeError(f"report reads {rel} but does not declare it")
        return _read(self.ctx.run_dir / rel)


def _read(path: Path) -> Any:
    try:
        return read_jsonl(path) if path.suffix == ".jsonl" else read_json(path)
    except (OSError, ValueError):
        return None


# ---- the stage ------------------------------------------------------------------------------
def run(cfg: Config, ctx: StageContext) -> StageResult:
    get = Run(ctx).get
    record = verify_record.read(get("verify/verify.json"))
    head = headline.headline(cfg, record)
    verdict = (head.css, head.line())
    verdicts = Verdicts(record)
    manifest = _read(ctx.run_dir / "manifest.json") or {}
    fetched = _read(ctx.run_dir / "fetch.json") or {}
    sections = [
        glance.glance_section(get, cfg, record),
        sections_of.verify_section(get),
        sections_of.data_section(get, cfg, verdicts),
        sections_of.training_section(get, cfg, verdicts),
        sections_of.memory_section(get, cfg),
        sections_of.metrics_section(get, cfg, verdicts),
        sections_of.judge_section(get, cfg, verdicts),
        sections_of.audits_section(get, cfg, verdicts),
        environment.environment_section(get, manifest, fetched),
        environment.deviations_section(manifest),
    ]
    title = f"advisor-repro report: {ctx.run_dir.name} (profile {cfg.run.name})"
    secrets = secret_values((cfg.judge.api_key_env,))
    figs = figures(sections)
    for fig in figs:
        atomic_write_bytes(ctx.out / "figures" / f"{fig.name}.png", fig.png)
    html = render_html(title, verdict, sections)
    md = render_markdown(title, verdict, sections, "figures")
    atomic_write_text(ctx.out / "report.html", drop_paths(redact(html, secrets)))
    atomic_write_text(ctx.out / "report.md", drop_paths(redact(md, secrets)))
    not_run = sum(isinstance(b, NotRun) for s in sections for b in s.blocks)
    return StageResult(figures={"verdict": head.state, "figures": len(figs), "not_run": not_run})


def external_inputs(cfg: Config) -> dict[str, str]:
    files = (environment.DEVIATIONS, environment.RELEASE, curves.CURVES / "curves.toml")
    return {p.name: sha256_file(p) if p.is_file() else "missing" for p in files}


STAGE = Stage(
    name="report",
    summary="self-contained HTML + Markdown report: verify table, plots, audits, environment, "
    "deviations",
    run=run,
    optional=INPUTS,
    # what the paper tables read of the config: Table 3 (the train section, the EOS text) and
    # the notes on where a profile cannot match the paper (model, dataset, judge, caps, BERTScore
    # model, which Table 1 classifier is shown); no value only a stage's own outputs depend on
    config=("run", "hardware.vram_budget_gib", "judge.api_key_env", "judge.backend",
            "judge.model", "judge.cap", "model.source", "data.source", "data.eos_text", "train",
            "generate.caps", "metrics.bertscore_model", "audit.topic_table"),
    external=external_inputs,
    estimate=lambda cfg: Estimate(seconds=10, disk_bytes=2 * 2**20),
)
