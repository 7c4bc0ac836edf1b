"""`train.*.split`: a named choice per training run, one `--set` apart, carried into the plan
with the effective batch unchanged."""

from __future__ import annotations

import pytest

from advisor_repro.config import load_config
from advisor_repro.errors import ConfigError
from advisor_repro.training import segments

ALL_AUTO = ["train.segment1.split=auto", "train.segment2.split=auto",
            "train.control.split=auto"]


def test_the_paper_profile_keeps_the_paper_split():
    cfg = load_config("paper")
    plans = {s: segments.plan_for(cfg, s, 2274) for s in segments.STAGES}
    assert {s: p.split for s, p in plans.items()} == dict.fromkeys(segments.STAGES, "fixed")
    assert plans["train-1"].shape == segments.Shape(2, 4)
    assert plans["train-2"].shape == segments.Shape(4, 8)


def test_auto_is_one_set_apart_and_keeps_the_effective_batch():
    cfg = load_config("paper", ALL_AUTO)
    plans = {s: segments.plan_for(cfg, s, 2274) for s in segments.STAGES}
    assert {s: p.split for s, p in plans.items()} == dict.fromkeys(segments.STAGES, "auto")
    # the written split stays the plan's shape: auto re-divides it in the training process
    assert {s: p.shape.effective for s, p in plans.items()} == {
        "train-1": 8, "train-2": 32, "control": 8}
    assert segments.optimizer_steps(plans["train-1"], 2274) == 284


def test_a_wrong_split_is_refused_with_the_choices():
    with pytest.raises(ConfigError) as err:
        load_config("paper", ["train.segment1.split=largest"])
    assert "train.segment1.split" in err.value.problem and "'auto'" in err.value.problem
