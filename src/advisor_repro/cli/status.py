"""`repro status`: the stage table of a run directory (done / imported / stale / partial /
paused / failed / pending). An imported stage (`repro import-release`) lists the released
files it came from with their sha256; `repro all` leaves it as it is unless `--force STAGE`.

Examples:
  repro status                      # the latest run (runs/latest)
  repro status --run-dir runs/paper
"""

from __future__ import annotations

import argparse

from advisor_repro import pipeline
from advisor_repro.cli.common import add_run_options, say, select
from advisor_repro.stages.contract import Figure


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status",
        help="show which stages are done, stale or pending",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_options(p)
    p.set_defaults(func=main)


def _figures(fig: dict[str, Figure]) -> str:
    return ", ".join(f"{k}={v}" for k, v in fig.items())[:70]


def main(args: argparse.Namespace) -> int:
    sel = select(args)
    say(f"run directory: {sel.run_dir}  (profile {sel.profile}, config {sel.cfg.hash[:12]})")
    rows = [("stage", "state", "time", "key figures / reason")]
    for stage in pipeline.stages():
        st = pipeline.stage_state(stage, sel.cfg, sel.run_dir)
        rec = st.record or {}
        secs = f"{rec['seconds']:.1f}s" if "seconds" in rec and st.state == "done" else ""
        detail = _figures(rec.get("figures", {})) if st.state == "done" else st.reason
        if st.state == "imported" and rec.get("figures"):
            detail = f"{_figures(rec['figures'])}; {st.reason}"
        rows.append((stage.name, st.state, secs, detail))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        say("  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3])
    if any(r[1] == "imported" for r in rows[1:]):
        say("imported stages are kept as they are by `repro all` and single stages; "
            "`--force STAGE` recomputes one, replacing the import")
    return 0
