"""`repro plan --gpu`: the projection arithmetic on stated costs, and the paper's step counts."""

import pytest

from advisor_repro import pipeline
from advisor_repro.audits import training_data
from advisor_repro.config import load_config
from advisor_repro.errors import ConfigError
from advisor_repro.hardware import projection
from advisor_repro.training import segments

PAPER = load_config("paper")
COSTS = {  # round numbers, so every expected figure below is plain arithmetic
    "source": {"gpu": "H100", "date": "test"},
    "train": {"step": {"fp16": {"2x4": {"step_s": 2.0, "tokens": 6000},
                                "4x8": {"step_s": 4.0, "tokens": 24000}},
                       "bf16": {"2x4": {"step_s": 1.5, "tokens": 6000},
                                "4x8": {"step_s": 3.0, "tokens": 24000}}},
              "fixed_s": {"train-1": 50.0, "train-2": 70.0, "control": 70.0},
              "hf_slowdown": {"2": 2.0, "4": 1.5}},
    "generate": {"fixed_s": 10.0, "step_s": 0.1, "batch": 50},
    "judge": {"local_call_s": 10.0, "local_fixed_s": 20.0, "api_call_s": 8.0},
    "fixed_s": {"handoff": 20.0},
}


def planned(own):
    """The registry's stages named in `own`, with those own estimates and what each declares."""
    declared = {s.name: s.gpu_work for s in pipeline.stages()}
    return [projection.Planned(name, seconds, declared[name]) for name, seconds in own.items()]


def project(cfg, gpu, own, costs=COSTS):
    return {p.stage: p for p in projection.project(cfg, projection.gpu_named(gpu), planned(own),
                                                   costs)}


def by_stage(cfg, gpu):
    own = {"preflight": 15.0, "train-1": 0, "handoff": 240.0, "train-2": 0, "control": 0,
           "generate": 0, "judge": 0, "verify": 2.0}
    return project(cfg, gpu, own)


def test_paper_step_counts_follow_the_trainer_rule():
    steps = {s: segments.optimizer_steps(segments.plan_for(PAPER, s, 2274), 2274)
             for s in ("train-1", "train-2", "control")}
    assert steps == {"train-1": 284, "train-2": 142, "control": 852}  # PAPER.md: 284 / 142


@pytest.mark.parametrize("name", ["T4", "t4", "Tesla T4", "NVIDIA T4"])
def test_gpu_names_are_forgiving(name):
    assert projection.gpu_named(name).key == "T4"


def test_an_unknown_gpu_is_refused_with_the_choices():
    with pytest.raises(ConfigError) as e:
        projection.gpu_named("K80")
    assert "K80" in str(e.value) and "T4" in str(e.value) and "gpus.toml" in str(e.value)


def test_ratio_is_the_datasheet_fp16_ratio():
    assert projection.ratio(projection.gpu_named("T4"), COSTS) == pytest.approx(65 / 989.4)
    assert projection.ratio(projection.gpu_named("H100"), COSTS) == 1.0


def test_training_scales_gpu_work_and_keeps_fixed_costs():
    t4, h100 = by_stage(PAPER, "T4"), by_stage(PAPER, "H100")
    r = 65 / 989.4
    assert h100["train-1"].seconds == pytest.approx(50 + 284 * 1.5)  # bf16 on sm 9.0
    assert t4["train-1"].seconds == pytest.approx(50 + 284 * 2.0 / r)
    assert t4["train-2"].seconds == pytest.approx(70 + 142 * 4.0 / r)
    assert t4["train-2"].gpu_s == pytest.approx(142 * 4.0 / r)
    assert t4["control"].seconds == pytest.approx(70 + 852 * 2.0 / r)


def test_precision_follows_preflight_rule_unless_set():
    gpu = projection.gpu_named
    assert projection.precision_on(PAPER, gpu("T4")) == "fp16"
    assert projection.precision_on(PAPER, gpu("P100")) == "fp16"
    assert projection.precision_on(PAPER, gpu("A100")) == "bf16"
    fp16 = load_config("paper", ["train.precision='fp16'"])
    assert projection.precision_on(fp16, gpu("H100")) == "fp16"
    assert by_stage(fp16, "H100")["train-1"].seconds == pytest.approx(50 + 284 * 2.0)


def test_on_a_p100_the_hf_backend_and_its_slowdown_are_used():
    p100 = by_stage(PAPER, "P100")
    r = 18.7 / 989.4
    assert projection.backend_on(PAPER, projection.gpu_named("P100")) == "hf"
    assert p100["train-1"].seconds == pytest.approx(50 + 284 * 2.0 * 2.0 / r)
    assert p100["train-2"].seconds == pytest.approx(70 + 142 * 4.0 * 1.5 / r)
    assert "hf backend" in p100["train-1"].basis


def test_generation_is_one_batch_of_50_to_the_top_cap_per_model():
    t4 = by_stage(PAPER, "T4")
    assert t4["generate"].seconds == pytest.approx(2 * (10 + 512 * 0.1 / (65 / 989.4)))


def test_api_judge_is_not_scaled_and_a_local_one_is():
    # 50 API calls, judge.concurrency = 8 of them in flight: 7 calls' latency
    assert by_stage(PAPER, "T4")["judge"].seconds == pytest.approx(30 + 7 * 8.0)
    one = load_config("paper", ["judge.concurrency=1"])
    assert by_stage(one, "T4")["judge"].seconds == pytest.approx(30 + 50 * 8.0)
    local = load_config("paper", ["judge.backend='local'"])
    r = 65 / 989.4
    assert by_stage(local, "T4")["judge"].seconds == pytest.approx(30 + 20 + 50 * 10.0 / r)


def test_a_measured_batched_judge_cost_replaces_the_one_at_a_time_estimate():
    local = load_config("paper", ["judge.backend='local'", "judge.swap_pass=true"])
    costs = {**COSTS, "judge": {**COSTS["judge"], "local_batched_verdict_s": 1.5,
                                "local_batched_from": "repro bench judge, H200"}}
    t4 = project(local, "T4", {"judge": 0}, costs)["judge"]
    assert t4.seconds == pytest.approx(30 + 20 + 100 * 1.5 / (65 / 989.4))
    assert "batched, repro bench judge, H200" in t4.basis


def test_the_profiles_own_base_as_judge_uses_its_full_size_stage_cost():
    # judge.local_model = "": the profile's base judges (the rehearsal); each stage measured
    # whole at full size, per call, load included; a named judge model keeps the bench cost
    own = {"judge": 1.0, "audit": 0.5, "audit-training": 0.25, "from": "replay, H100"}
    costs = {**COSTS, "judge": {**COSTS["judge"], "own_base_call_s": own}}
    cfg = load_config("rehearsal", ["judge.sample=0"])
    assert cfg.judge.backend == "local" and not cfg.judge.local_model
    stages = {"judge": 0, "audit": 0, "audit-training": 0}
    t4 = project(cfg, "T4", stages, costs)
    r = 65 / 989.4
    assert t4["judge"].seconds == pytest.approx(50 * 1.0 / r) == t4["judge"].gpu_s
    assert "the profile's own base as the judge" in t4["judge"].basis
    calls = training_data.judge_calls(cfg)  # what audit-training declares
    assert dict((p.name, p.work.calls) for p in planned(stages))["audit-training"] is \
        training_data.judge_calls
    assert t4["audit-training"].seconds == pytest.approx(calls * 0.25 / r)
    named = load_config("rehearsal", ["judge.sample=0", "judge.local_model='Qwen/Qwen2.5-14B'"])
    t4 = project(named, "T4", stages, costs)
    assert t4["judge"].seconds == pytest.approx(30 + 20 + 50 * 10.0 / r)


def test_unmeasured_stages_keep_their_estimate_and_measured_fixed_ones_are_used():
    t4 = by_stage(PAPER, "T4")
    assert t4["preflight"].seconds == 15.0 and t4["verify"].seconds == 2.0
    assert t4["handoff"].seconds == 20.0


def test_paper_comparison_and_calibration():
    rows = {r["stage"]: r for r in projection.paper_comparison(PAPER, COSTS)}
    assert rows["train-1"]["gpu"] == "P100" and rows["train-1"]["paper_s"] == 20845
    assert rows["train-2"]["gpu"] == "T4" and rows["train-2"]["paper_s"] == 19578
    factor = projection.calibration(PAPER, projection.gpu_named("T4"), COSTS)
    assert factor == pytest.approx(19578 / (70 + 142 * 4.0 / (65 / 989.4)))
    # scaled by its own factor, segment 2 on a T4 lands on the paper's figure
    seg2 = by_stage(PAPER, "T4")["train-2"]
    assert seg2.seconds + seg2.gpu_s * (factor - 1) == pytest.approx(19578, rel=0.02)
    # the P100 too: hf here (Unsloth in the paper), calibrated on the paper's segment 1
    p100 = projection.calibration(PAPER, projection.gpu_named("P100"), COSTS)
    seg1 = by_stage(PAPER, "P100")["train-1"]
    assert p100 < 1 and seg1.seconds + seg1.gpu_s * (p100 - 1) == pytest.approx(20845, rel=0.02)
    # none where the paper timed nothing
    assert projection.calibration(PAPER, projection.gpu_named("A100"), COSTS) is None


def test_the_shipped_tables_load_and_cover_the_paper_shapes():
    costs = projection.measured()
    for precision in ("fp16", "bf16"):
        assert set(costs["train"]["step"][precision]) >= {"2x4", "4x8"}
    assert costs["source"]["gpu"] in projection.gpus()
    assert {"P100", "T4", "A100", "H100"} <= set(projection.gpus())


AUTO = ["train.segment1.split=auto", "train.segment2.split=auto", "train.control.split=auto"]
AUTO_COSTS = {**COSTS, "train": {
    **COSTS["train"], "auto": {"8": "8x1", "32": "16x2"},
    "step": {"fp16": {**COSTS["train"]["step"]["fp16"],
                      "8x1": {"step_s": 1.0, "tokens": 6000, "gpu": "H200"},
                      "16x2": {"step_s": 2.5, "tokens": 24000, "gpu": "H200"}},
             "bf16": COSTS["train"]["step"]["bf16"]}}}


def test_split_auto_uses_the_measured_auto_costs_scaled_from_their_gpu():
    cfg = load_config("paper", AUTO)
    own = {"train-1": 0, "train-2": 0, "control": 0}
    t4 = project(cfg, "T4", own, AUTO_COSTS)
    r = 65 / 989.4  # the H200 has the H100's fp16 peak
    assert t4["train-1"].seconds == pytest.approx(50 + 284 * 1.0 / r)
    assert t4["train-2"].seconds == pytest.approx(70 + 142 * 2.5 / r)
    assert "8x1" in t4["train-1"].basis and "H200" in t4["train-1"].basis
    assert "written 2x4" in t4["train-1"].basis
    # bf16 (sm 9.0) was not measured at auto: the fp16 auto cost x bf16/fp16 at the written split
    h100 = project(cfg, "H100", own, AUTO_COSTS)
    assert h100["train-1"].seconds == pytest.approx(50 + 284 * 1.0 * 1.5 / 2.0)
    assert "fp16 cost x 0.750" in h100["train-1"].basis


def test_split_auto_keeps_the_written_cost_where_it_was_not_measured():
    cfg = load_config("paper", AUTO)
    p100 = project(cfg, "P100", {"train-1": 0}, AUTO_COSTS)["train-1"]
    fixed = project(load_config("paper"), "P100", {"train-1": 0}, AUTO_COSTS)["train-1"]
    assert p100.seconds == fixed.seconds and "not measured" in p100.basis  # hf backend


def test_the_paper_calibration_compares_with_the_paper_split_under_auto():
    auto, fixed = load_config("paper", AUTO), load_config("paper")
    assert projection.paper_comparison(auto, AUTO_COSTS) == projection.paper_comparison(
        fixed, AUTO_COSTS)
