"""The report's figures: plain numbers in, PNG bytes out (matplotlib, no pyplot state).

Each function draws one figure from what the run has; the caller decides what "not run" looks
like when there is nothing to draw. Figures are 150 dpi, shown at their print size, with
labelled axes and legends outside the data.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.figure import Figure

DPI = 150  # the report shows each figure at its print size: 150 px per inch at least
COLORS = {"base": "#4c72b0", "ft": "#dd8452", "control": "#55a868", "tie": "#8c8c8c"}
LABELS = {"base": "base", "ft": "fine-tuned", "tie": "tie", "not_ok": "no verdict"}
Curve = Sequence[tuple[float, float]]  # (x, y) points


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def loss_overlay(
    run: dict[str, Curve], paper: dict[str, Curve], control: Curve,
    handoff_at: float | None, paper_handoff_at: float | None,
) -> bytes:
    """This run's loss by optimizer step (top panel) and the paper's released curves (bottom
    panel), each on its own axes: a random-weight or small model starts near 10, the paper's
    7B near 1, and one shared y axis would flatten the paper's curve. Legends sit outside."""
    shown = [(t, c) for t, c in (("this run", run), ("the paper (released W&B exports)", paper))
             if any(c.values()) or (t == "this run" and control)]  # fmt: skip
    fig = Figure(figsize=(8, 2.5 * max(1, len(shown)) + 0.4), layout="constrained")
    axes = fig.subplots(max(1, len(shown)), 1, squeeze=False)[:, 0]
    colors = {"this run": ("#4c72b0", "#c44e52"), "the paper (released W&B exports)":
              ("#8172b2", "#dd8452")}  # fmt: skip
    for ax, (title, curves) in zip(axes, shown, strict=False):
        for (name, points), color in zip(curves.items(), colors[title], strict=False):
            if points:
                ax.plot(*zip(*points, strict=True), color=color, lw=1.3, label=name)
        if title == "this run" and control:
            ax.plot(*zip(*control, strict=True), color=COLORS["control"], lw=1.0, ls="--",
                    label="control (one continuous run)")
        at = handoff_at if title == "this run" else paper_handoff_at
        if at is not None:
            ax.axvline(at, color="black", lw=1, ls=":", label="handoff (adapter only)")
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_xlabel("optimizer step (segment 2 after segment 1)")
        ax.set_ylabel("training loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(fig)


def memory_bars(per_segment: dict[str, dict[str, float]], lines: dict[str, float],
                band: tuple[float, float, str] | None = None) -> bytes:
    """Peak memory (GiB) per segment and kind (allocated / reserved / NVML), the limit lines
    (the 16 GB class, the profile's budget) and the paper's NVML band."""
    fig = Figure(figsize=(8, 4.0), layout="constrained")
    ax = fig.subplots()
    kinds = sorted({k for v in per_segment.values() for k in v})
    width = 0.8 / max(1, len(kinds))
    for i, kind in enumerate(kinds):
        xs = [s + (i - (len(kinds) - 1) / 2) * width for s in range(len(per_segment))]
        ys = [per_segment[seg].get(kind, 0.0) for seg in per_segment]
        bars = ax.bar(xs, ys, width=width, label=kind)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    if band:
        ax.axhspan(band[0], band[1], color="#8172b2", alpha=0.25, label=band[2])
    for (label, y), ls in zip(lines.items(), ("-", "--", ":"), strict=False):
        ax.axhline(y, color="#c44e52", lw=1, ls=ls, label=label)
    ax.set_xticks(range(len(per_segment)), list(per_segment), fontsize=8)
    ax.set_xlabel("training segment (the device that ran it)")
    ax.set_ylabel("peak memory (GiB)")
    ax.set_ylim(0, max([*lines.values(), *(v for d in per_segment.values() for v in d.values()),
                        1.0]) * 1.15)  # fmt: skip
    fig.legend(fontsize=7, loc="outside lower center", ncols=3, frameon=False)
    return _png(fig)


def distributions(panels: dict[str, dict[str, list[float]]],
                  paper: dict[str, dict[str, float]] | None = None) -> bytes:
    """One box plot per panel (a metric at a cap): base vs FT per-item values, the paper's mean
    marked where the paper reports one for that metric and cap."""
    n = len(panels)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(3.0 * cols, 2.8 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    marked = False
    for ax, (title, groups) in zip(axes.flat, panels.items(), strict=False):
        names = [g for g in ("base", "ft") if groups.get(g)]
        box = ax.boxplot(
            [groups[g] for g in names], tick_labels=[LABELS[g] for g in names],
            patch_artist=True, widths=0.5)
        for patch, name in zip(box["boxes"], names, strict=True):
            patch.set_facecolor(COLORS[name])
            patch.set_alpha(0.6)
        for i, name in enumerate(names, start=1):
            v = (paper or {}).get(title, {}).get(name)
            if v is not None:
                ax.plot([i], [v], marker="D", color="black", ms=5, ls="none",
                        label="paper's mean" if not marked else None)
                marked = True
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(title.split(" @ ")[0] + " per answer", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if marked:
        fig.legend(fontsize=8, loc="outside lower center")
    return _png(fig)


def judge_scores(scores: dict[str, dict[str, tuple[float, float]]],
                 paper: dict[str, dict[str, float]] | None = None) -> bytes:
    """Mean +- population SD per score (0-3) and model, for each judge pass; the paper's means
    marked (black diamonds)."""
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax = fig.subplots()
    labels = list(scores)
    marked = False
    for i, model in enumerate(("base", "ft")):
        xs = [j + (i - 0.5) * 0.38 for j in range(len(labels))]
        means = [scores[k].get(model, (0.0, 0.0))[0] for k in labels]
        sds = [scores[k].get(model, (0.0, 0.0))[1] for k in labels]
        bars = ax.bar(xs, means, width=0.38, yerr=sds, capsize=3, color=COLORS[model],
                      label=LABELS[model])  # fmt: skip
        ax.bar_label(bars, fmt="%.2f", fontsize=7, label_type="center")
        for x, k in zip(xs, labels, strict=True):
            v = (paper or {}).get(k.split(" (")[0], {}).get(model)
            if v is not None:
                ax.plot([x], [v], marker="D", color="black", ms=5, ls="none",
                        label="paper's mean" if not marked else None)
                marked = True
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("score (judge pass)")
    ax.set_ylim(0, 3.3)
    ax.set_ylabel("judge score (0-3), mean ± SD")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(fig)


def preferences(passes: dict[str, dict[str, int]]) -> bytes:
    """Stacked preference counts (base / FT / tie / not ok) per judge pass (the paper's own
    counts as a row of their own when the caller adds them)."""
    fig = Figure(figsize=(8, 1.4 + 0.5 * len(passes)), layout="constrained")
    ax = fig.subplots()
    names = list(passes)
    left = [0.0] * len(names)
    for outcome in ("base", "ft", "tie", "not_ok"):
        counts = [float(passes[p].get(outcome, 0)) for p in names]
        if not any(counts):
            continue
        bars = ax.barh(names, counts, left=left, color=COLORS.get(outcome, "#cccccc"),
                       label=LABELS.get(outcome, outcome))  # fmt: skip
        ax.bar_label(bars, labels=[f"{c:.0f}" if c else "" for c in counts],
                     label_type="center", fontsize=8, color="white")  # fmt: skip
        left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("prompts: which answer the judge preferred")
    ax.set_ylabel("judge pass")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(fig)
