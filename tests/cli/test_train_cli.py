"""`repro train --segment N`, `repro control` and `repro bench train`: parsing and mapping onto
the stages (the training itself is tested in tests/stages/test_train.py)."""

from __future__ import annotations

import pytest

from advisor_repro.cli import build_parser, main
from advisor_repro.cli import train as train_cli


def test_train_segment_maps_to_the_stage_and_backend_to_an_override():
    args = build_parser().parse_args(["train", "--segment", "2", "--backend", "hf"])
    assert args.func is train_cli.main and train_cli.stage_name(args) == "train-2"
    args = build_parser().parse_args(["control", "--backend", "unsloth", "--force"])
    assert train_cli.stage_name(args) == "control" and args.force


def test_train_refuses_a_third_segment_and_an_unknown_backend(capsys):
    for argv in (["train", "--segment", "3"], ["train", "--segment", "1", "--backend", "x"],
                 ["train"]):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(argv)
        assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_stage_commands_are_listed_once(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("train-1", "handoff", "train-2", "control", "train ", "bench"):
        assert name in out
    assert out.count("\n    control") == 1


def test_bench_needs_a_gpu(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the refusal is for CPU-only machines")
    code = main(["bench", "train", "--out", str(tmp_path / "b.json")])
    assert code == 4 and "no CUDA GPU" in capsys.readouterr().err
