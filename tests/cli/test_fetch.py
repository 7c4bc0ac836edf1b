"""`repro fetch` without a reachable hub: a clear refusal naming what is missing."""

from advisor_repro.cli import main
from advisor_repro.cli.fetch import hub_needs
from advisor_repro.config import load_config


def test_paper_profile_needs_dataset_and_both_bases():
    needs = hub_needs(load_config("paper"))
    assert needs == [
        ("dataset", "millat/StudyAbroadGPT-Dataset", "main"),
        ("model", "unsloth/mistral-7b-instruct-v0.3-bnb-4bit", "main"),
        ("model", "mistralai/Mistral-7B-Instruct-v0.3", "main"),
    ]
    assert hub_needs(load_config("smoke")) == []


def test_unreachable_hub_exits_6_naming_the_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert main(["fetch", "--profile", "paper", "--run-dir", str(tmp_path / "run")]) == 6
    err = capsys.readouterr().err
    assert "millat/StudyAbroadGPT-Dataset" in err and "HF_HUB_OFFLINE" in err
