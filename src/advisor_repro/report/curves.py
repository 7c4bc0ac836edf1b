"""This run's training loss with the paper's own curves overlaid.

The paper's curves are the author's W&B exports shipped under artifacts/curves/ (curves.toml
records their provenance and sha256; a file that does not match is not drawn, and the report
says why). Both are drawn by optimizer step within each segment, segment 2 after segment 1,
so that the handoff sits at the same place: step 284 in the paper. A run with other step counts
(the smoke profile) is drawn on a second, top axis of its own steps.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tomllib
from pathlib import Path
from typing import Any

from advisor_repro.report import plots
from advisor_repro.report.render import Figure, NotRun, Text

CURVES = Path(__file__).resolve().parents[3] / "artifacts" / "curves"
SEGMENTS = ("train-1", "train-2")
Points = list[tuple[float, float]]


def released() -> tuple[dict[str, Points], str]:
    """({"segment1": [(step, loss)], "segment2": [...]}, problem) from artifacts/curves/."""
    index = CURVES / "curves.toml"
    if not index.is_file():
        return {}, f"{index.name} is missing from artifacts/curves/"
    out, problems = {}, []
    for name, entry in tomllib.loads(index.read_text(encoding="utf-8")).items():
        if "loss_column" not in entry:  # the learning-rate export: not a loss curve
            continue
        path = CURVES / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']} is missing")
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"{entry['path']}: sha256 differs from curves.toml (edited?)")
            continue
        rows = csv.DictReader(io.StringIO(data.decode("utf-8")))
        pts = [(float(r[entry["step_column"]]), float(r[entry["loss_column"]])) for r in rows]
        out[name] = [(s, v) for s, v in pts if s >= 1]  # W&B's empty row 0
    return out, "; ".join(problems)


def run_points(rows: list[dict[str, Any]] | None) -> Points:
    return [(float(r["step"]), float(r["loss"])) for r in rows or []
            if isinstance(r.get("step"), int | float) and isinstance(r.get("loss"), int | float)]


def loss_blocks(steps: dict[str, Any], control: Any, devices: dict[str, str]) -> list[Any]:
    """The loss figure (this run, the paper's released curves, the control) and its caption;
    `devices` names what ran each segment ("NVIDIA H100 80GB HBM3", "CPU")."""
    paper, problem = released()
    seg1, seg2 = run_points(steps.get("train-1")), run_points(steps.get("train-2"))
    ctrl = run_points(control)
    if not (seg1 or seg2 or ctrl or paper):
        return [NotRun("loss curve (train-1, train-2 and control have no steps.jsonl)")]
    end1 = seg1[-1][0] if seg1 else 0.0
    paper1, paper2 = paper.get("segment1", []), paper.get("segment2", [])
    pend1 = paper1[-1][0] if paper1 else 0.0
    png = plots.loss_overlay(
        {f"segment 1 ({devices.get('train-1', 'device not recorded')})": seg1,
         f"segment 2 ({devices.get('train-2', 'device not recorded')})":
             [(end1 + s, v) for s, v in seg2]},
        {"segment 1 (P100)": paper1, "segment 2 (T4)": [(pend1 + s, v) for s, v in paper2]},
        ctrl, end1 if seg2 else None, pend1 if paper2 else None,
    )  # fmt: skip
    missing = [s for s, v in (("train-1", seg1), ("train-2", seg2), ("control", ctrl)) if not v]
    caption = ("Training loss by optimizer step, segment 2 after segment 1 (dotted: the "
               "adapter-only handoff). Top: this run (dashed: the control run); bottom: the "
               "paper's released W&B curves (P100 then T4), each on its own scale")  # fmt: skip
    if missing:
        caption += f"; not run: {', '.join(missing)}"
    blocks: list[Any] = [Figure("loss", png, caption)]
    if problem:
        blocks.append(Text(f"The paper's curves are not drawn where they failed their check: "
                           f"{problem}."))  # fmt: skip
    elif seg1 and paper1 and len(seg1) + len(seg2) != len(paper1) + len(paper2):
        blocks.append(Text(f"This run has {len(seg1)} + {len(seg2)} optimizer steps, the paper "
                           f"{len(paper1)} + {len(paper2)}."))  # fmt: skip
    return blocks
