"""The report's figures: plain numbers in, PNG bytes out (matplotlib, no pyplot state).

Each function draws one figure from what the run has; the caller decides what "not run" looks
like when there is nothing to draw. Figures are small (100 dpi) so the self-contained HTML
stays a few hundred kilobytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.figure import Figure

DPI = 100
COLORS = {"base": "#4c72b0", "ft": "#dd8452", "control": "#55a868", "tie": "#8c8c8c"}
Curve = Sequence[tuple[float, float]]  # (x, y) points


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def loss_curve(
    segments: dict[str, Curve], control: Curve, handoff_at: float | None, xlabel: str
) -> bytes:
    """Training loss: the segments end to end, the handoff marked, the continuous control run
    overlaid on the same axis (cumulative epochs: the two paths use different batch sizes)."""
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    palette = ("#4c72b0", "#c44e52", "#8172b2")
    for (name, points), color in zip(segments.items(), palette, strict=False):
        if points:
            ax.plot(*zip(*points, strict=True), color=color, lw=1.2, label=name)
    if control:
        ax.plot(
            *zip(*control, strict=True),
            color=COLORS["control"],
            lw=1.0,
            ls="--",
            label="control (one continuous run)",
        )
    if handoff_at is not None:
        ax.axvline(handoff_at, color="black", lw=1, ls=":")
        ax.annotate(
            "handoff (adapter only)",
            (handoff_at, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def loss_overlay(
    run: dict[str, Curve], paper: dict[str, Curve], control: Curve,
    handoff_at: float | None, paper_handoff_at: float | None,
) -> bytes:
    """This run's loss by optimizer step with the paper's released curves (grey) overlaid.
    When the step counts differ, this run gets its own top axis so both fill the width."""
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    for (name, points), shade in zip(paper.items(), ("#9a9a9a", "#6f6f6f"), strict=False):
        if points:
            ax.plot(*zip(*points, strict=True), color=shade, lw=0.9, label=name)
    if paper_handoff_at is not None:
        ax.axvline(paper_handoff_at, color="#6f6f6f", lw=1, ls=":")
    ax.set_xlabel("optimizer step (the paper's)" if any(paper.values()) else "optimizer step")
    ax.set_ylabel("training loss")
    own = [x for pts in (*run.values(), control) for x, _ in pts]
    far = [x for pts in paper.values() for x, _ in pts]
    twin = ax
    if own and far and abs(max(own) - max(far)) > 0.05 * max(far):
        twin = ax.twiny()
        twin.set_xlabel("optimizer step (this run)")
    for (name, points), color in zip(run.items(), ("#4c72b0", "#c44e52"), strict=False):
        if points:
            twin.plot(*zip(*points, strict=True), color=color, lw=1.3, label=f"this run, {name}")
    if control:
        twin.plot(*zip(*control, strict=True), color=COLORS["control"], lw=1.0, ls="--",
                  label="this run, control (one continuous run)")
    if handoff_at is not None:
        twin.axvline(handoff_at, color="black", lw=1, ls=":")
        twin.annotate("handoff (adapter only)", (handoff_at, 1.0),
                      xycoords=("data", "axes fraction"), xytext=(4, -12),
                      textcoords="offset points", fontsize=8)
    ax.grid(alpha=0.3)
    axes = [ax] if twin is ax else [ax, twin]
    lines = [h for a in axes for h in a.get_legend_handles_labels()[0]]
    ax.legend(lines, [str(h.get_label()) for h in lines], fontsize=7, loc="best")
    return _png(fig)


def memory_bars(per_segment: dict[str, dict[str, float]], lines: dict[str, float]) -> bytes:
    """Peak memory (GB) per segment and kind (allocated / reserved / NVML), with the budget
    lines (the 16 GB class, the T4's capacity)."""
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    ax = fig.subplots()
    kinds = sorted({k for v in per_segment.values() for k in v})
    width = 0.8 / max(1, len(kinds))
    for i, kind in enumerate(kinds):
        xs = [s + (i - (len(kinds) - 1) / 2) * width for s in range(len(per_segment))]
        ys = [per_segment[seg].get(kind, 0.0) for seg in per_segment]
        bars = ax.bar(xs, ys, width=width, label=kind)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    for (label, y), ls in zip(lines.items(), ("-", "--", ":"), strict=False):
        ax.axhline(y, color="#c44e52", lw=1, ls=ls, label=label)
    ax.set_xticks(range(len(per_segment)), list(per_segment))
    ax.set_ylabel("peak GPU memory (GB)")
    ax.set_ylim(0, max([*lines.values(), 1.0]) * 1.15)
    ax.legend(fontsize=7, loc="upper left", ncols=2)
    return _png(fig)


def distributions(panels: dict[str, dict[str, list[float]]]) -> bytes:
    """One box plot per panel (a metric at a cap): base vs FT per-item values."""
    n = len(panels)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(3.0 * cols, 2.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (title, groups) in zip(axes.flat, panels.items(), strict=False):
        names = [g for g in ("base", "ft") if groups.get(g)]
        box = ax.boxplot(
            [groups[g] for g in names], tick_labels=names, patch_artist=True, widths=0.5
        )
        for patch, name in zip(box["boxes"], names, strict=True):
            patch.set_facecolor(COLORS[name])
            patch.set_alpha(0.6)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return _png(fig)


def judge_scores(scores: dict[str, dict[str, tuple[float, float]]]) -> bytes:
    """Mean +- population SD per score (0-3) and model, for each judge pass."""
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax = fig.subplots()
    labels = list(scores)
    for i, model in enumerate(("base", "ft")):
        xs = [j + (i - 0.5) * 0.38 for j in range(len(labels))]
        means = [scores[k].get(model, (0.0, 0.0))[0] for k in labels]
        sds = [scores[k].get(model, (0.0, 0.0))[1] for k in labels]
        bars = ax.bar(xs, means, width=0.38, yerr=sds, capsize=3, color=COLORS[model], label=model)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, label_type="center")
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(0, 3.3)
    ax.set_ylabel("judge score (0-3), mean +- SD")
    ax.legend(fontsize=8)
    return _png(fig)


def preferences(passes: dict[str, dict[str, int]]) -> bytes:
    """Stacked preference counts (base / FT / tie / not ok) per judge pass."""
    fig = Figure(figsize=(8, 1.2 + 0.5 * len(passes)), layout="constrained")
    ax = fig.subplots()
    names = list(passes)
    left = [0.0] * len(names)
    for outcome in ("base", "ft", "tie", "not_ok"):
        counts = [float(passes[p].get(outcome, 0)) for p in names]
        if not any(counts):
            continue
        bars = ax.barh(
            names, counts, left=left, color=COLORS.get(outcome, "#cccccc"), label=outcome
        )
        ax.bar_label(
            bars,
            labels=[f"{c:.0f}" if c else "" for c in counts],
            label_type="center",
            fontsize=8,
            color="white",
        )
        left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("prompts: which answer the judge preferred")
    fig.legend(fontsize=8, ncols=4, loc="outside upper center")
    return _png(fig)
