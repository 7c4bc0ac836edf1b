"""segments.py: the training plans, the control's length, the shape halving, the session-limit
arithmetic and the comparison, on plain values."""

from __future__ import annotations

import pytest

from advisor_repro.config import load_config
from advisor_repro.training.segments import (
    Shape,
    compare,
    control_steps,
    halve,
    plan_for,
    project,
    should_stop,
    summarize,
    warmup_steps,
)


def test_paper_plans_follow_the_segment_table():
    cfg = load_config("paper")
    s1, s2, c = (plan_for(cfg, s, 2274) for s in ("train-1", "train-2", "control"))
    assert (s1.epochs, s1.shape, s1.lr, s1.warmup_ratio) == (1, Shape(2, 4), 2e-4, 0.03)
    assert not s1.from_bundle and not s1.heldout
    assert (s2.epochs, s2.shape, s2.lr, s2.warmup_ratio) == (2, Shape(4, 8), 2e-4, 0.03)
    assert s2.from_bundle and s2.heldout
    # the control: 3 epochs at segment 1's shape, one schedule, no session limit
    assert (c.epochs, c.shape, c.max_steps, c.session_limit_hours) == (3, Shape(2, 4), 0, 0.0)


def test_notebook_recipe_and_control_on_segment2_recipe():
    cfg = load_config("paper", ["train.segment2.recipe='notebook'",
                                "train.control.recipe='segment2'"])
    s2 = plan_for(cfg, "train-2")
    assert (s2.shape, s2.lr, s2.warmup_ratio) == (Shape(2, 8), 1e-4, 0.05)
    c = plan_for(cfg, "control", 2274)
    assert (c.shape, c.lr, c.warmup_ratio) == (Shape(2, 8), 1e-4, 0.05)


def test_control_matches_the_sequences_of_capped_segments():
    cfg = load_config("paper", ["train.segment1.max_steps=10", "train.segment2.max_steps=3"])
    # 10 x 8 + 3 x 32 = 176 sequences at the control's 8 per step = 22 steps
    assert control_steps(cfg, Shape(2, 4), 2274) == 22
    # one segment capped, the other a full epoch count: 2 epochs x 100 conversations + 10 x 8
    cfg = load_config("paper", ["train.segment1.max_steps=10"])
    assert control_steps(cfg, Shape(2, 4), 100) == 35  # ceil(280 / 8)
    assert control_steps(load_config("paper"), Shape(2, 4), 2274) == 0  # uncapped: 3 epochs


def test_halve_keeps_the_effective_batch():
    assert halve(Shape(4, 8)) == Shape(2, 16)
    assert halve(Shape(2, 16)) == Shape(1, 32)
    assert halve(Shape(3, 2)) == Shape(1, 6)
    assert halve(Shape(1, 32)) is None


def test_warmup_steps_match_the_paper():
    assert warmup_steps(284, 0.03) == 9
    assert warmup_steps(142, 0.03) == 5


def test_session_projection_and_stop():
    # 60 s of setup, then 3 steps in 30 s: 284 steps take 60 + 284 x 10 s
    assert project(90.0, 3, 284, setup_s=60.0) == pytest.approx(60 + 2840)
    limit = 9 * 3600
    assert not should_stop(limit - 1000, 10.0, limit, 120.0)
    assert should_stop(limit - 100, 10.0, limit, 120.0)
    assert not should_stop(10**9, 10.0, 0.0, 120.0)  # no limit


def test_summarize_loss_figures():
    rows = [{"step": 1, "loss": 1.01}, {"step": 2, "loss": 0.41}, {"step": 3, "loss": 0.48}]
    assert summarize(rows) == {"start_loss": 1.01, "end_loss": 0.48, "min_loss": 0.41,
                               "min_loss_step": 2}
    assert summarize([])["start_loss"] is None


def test_compare_puts_both_paths_on_sequences_seen():
    seg1 = {"shape": {"effective": 8}, "optimizer_steps": 2, "end_loss": 0.5}
    seg2 = {"shape": {"effective": 32}, "optimizer_steps": 1, "start_loss": 0.45,
            "end_loss": 0.4, "heldout": {"loss": 0.9}}
    ctrl = {"shape": {"effective": 8}, "optimizer_steps": 6, "end_loss": 0.38,
            "heldout": {"loss": 0.85}, "recipe": "segment1"}
    rows1 = [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}]
    rows2 = [{"step": 1, "loss": 0.45}]
    rows_c = [{"step": s, "loss": 1.0 - s / 10} for s in range(1, 7)]
    out = compare(seg1, seg2, ctrl, rows1, rows2, rows_c)
    assert out["sequences_seen"] == {"handoff": 48, "control": 48}
    assert out["curves"]["handoff"] == [[8, 1.0], [16, 0.5], [48, 0.45]]
    assert out["curves"]["control"][-1] == [48, pytest.approx(0.4)]
    assert out["heldout_loss"]["delta"] == pytest.approx(0.05)
    assert out["final_train_loss"] == {"handoff": 0.4, "control": 0.38}
