"""`repro bench judge --scale tiny`: the real CLI on a 2-layer random Qwen2 on the CPU, one run
with the four measurements (the GPU figures come from the same code at --scale full)."""

import json

import pytest

from advisor_repro.bench.judge import _ratios, markdown, questions
from advisor_repro.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_bench_judge_tiny_measures_batched_and_free_in_one_run(tmp_path, capsys):
    out = tmp_path / "judge.json"
    assert main(["bench", "judge", "--scale", "tiny", "--questions", "4", "--free-tokens", "8",
                 "--standin-dir", str(tmp_path / "standin"), "--out", str(out),
                 "--markdown"]) == 0
    record = json.loads(out.read_text())
    runs = record["runs"]
    assert record["fitted_batch"] == 4  # the CPU batch of 8, capped by the 4 questions
    assert [runs[k]["batch"] for k in ("one_at_a_time", "batched")] == [1, 4]
    # under the grammar every reply of the random-weight judge is valid; free, none is
    assert runs["one_at_a_time"]["valid"] == runs["batched"]["valid"] == 4
    assert runs["free_one_at_a_time"]["valid"] == runs["free_batched"]["valid"] == 0
    # greedy: the same replies, hence the same tokens, one at a time and batched
    assert runs["one_at_a_time"]["new_tokens"] == runs["batched"]["new_tokens"]
    # the masks during the forward (not the stage's way) or after it: the same replies, the
    # step times compared
    assert runs["batched_overlap"]["new_tokens"] == runs["batched"]["new_tokens"]
    assert runs["batched_overlap"]["valid"] == 4
    assert record["overlap_step_ratio"] == pytest.approx(
        runs["batched_overlap"]["step_ms"] / runs["batched"]["step_ms"], rel=0.01)
    assert runs["free_batched"]["new_tokens"] == 4 * 8  # forced to --free-tokens a row
    assert record["batch_speedup"] == pytest.approx(
        runs["batched"]["verdicts_per_s"] / runs["one_at_a_time"]["verdicts_per_s"], rel=0.01)
    assert "grammar_overhead_batched" in record and record["identity"]["quant"] == "none"
    table = (tmp_path / "judge.md").read_text()
    assert "| one at a time | grammar | 1 | 4 | 4 |" in table
    assert "Batched / one at a time:" in capsys.readouterr().out


def test_the_targets_are_judged_on_the_measured_ratios():
    runs = {"one_at_a_time": {"verdicts_per_s": 1.0, "step_ms": 11.0},
            "batched": {"verdicts_per_s": 6.0, "step_ms": 20.0},
            "free_one_at_a_time": {"step_ms": 10.0}, "free_batched": {"step_ms": 19.0}}
    r = _ratios(runs)
    assert r["batch_speedup"] == 6.0 and r["batch_target_met"] is True
    assert r["grammar_overhead_one_at_a_time"] == pytest.approx(0.1)
    assert r["grammar_target_met"] is True
    runs["one_at_a_time"]["step_ms"] = 12.0
    assert _ratios(runs)["grammar_target_met"] is False


def test_bench_questions_are_distinct_pairs():
    qs = questions(8)
    assert len({json.dumps(q) for q in qs}) == 8
    assert all("RESPONSE_A:" in q[1]["content"] for q in qs)


def test_full_scale_without_a_gpu_is_refused_with_the_fix(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    code = main(["bench", "judge", "--standin-dir", str(tmp_path / "s"),
                 "--out", str(tmp_path / "j.json")])
    assert code == 4 and not (tmp_path / "s").exists()
    assert "--scale tiny" in capsys.readouterr().err


def test_the_table_sets_each_step_time_against_free_decoding_at_the_same_batch():
    # the shape of the H100 run: 24 questions, batch 13, grammar +50.5% batched
    runs = {"one_at_a_time": {"batch": 1, "questions": 24, "valid": 24, "verdicts_per_s": 0.1,
                              "step_ms": 25.02, "seconds": 240.0},
            "batched": {"batch": 13, "questions": 24, "valid": 24, "verdicts_per_s": 0.427,
                        "step_ms": 45.15, "seconds": 56.2},
            "free_one_at_a_time": {"batch": 1, "questions": 2, "valid": 0,
                                   "verdicts_per_s": 0.2, "step_ms": 34.0, "seconds": 10.0},
            "free_batched": {"batch": 13, "questions": 13, "valid": 0, "verdicts_per_s": 1.1,
                             "step_ms": 30.0, "seconds": 11.8}}
    record = {"environment": {"gpu": "NVIDIA H100 80GB HBM3", "torch": "2.9"}, "runs": runs,
              "identity": {"quant": "nf4", "dtype": "float16"}, "budget_gib": 14.74,
              "scale": "full", "questions": 24, "prompt_tokens": [880, 930], "max_tokens": 512,
              "free_tokens": 64, **_ratios(runs)}
    md = markdown(record)
    assert ("Grammar cost per decoding step, batched (batch 13): 45.15 ms against 30.0 ms free "
            "at batch 13 (+50.5%; target <= 10%).") in md
    assert ("Grammar cost per decoding step, one at a time (batch 1): 25.02 ms against 34.0 ms "
            "free at batch 1 (-26.4%; target <= 10%).") in md
    assert "Batched / one at a time: 4.27x verdicts/s (target >= 5x: NOT met)." in md
