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
        ("model", "roberta-large", "main"),  # BERTScore
        ("model", "sentence-transformers/all-MiniLM-L6-v2", "main"),  # the audits' encoder
    ]
    local = hub_needs(load_config("paper", ["judge.backend='local'"]))
    assert local[-1] == ("model", "Qwen/Qwen2.5-14B-Instruct", "main")
    assert hub_needs(load_config("smoke")) == []  # packaged models, the smoke dataset
    assert hub_needs(load_config("rehearsal")) == []  # random weights, generated data


def test_bertscore_by_hub_name_offline_and_uncached_names_the_model_and_fetch(
        tmp_path, monkeypatch):
    import pytest
    from huggingface_hub import constants

    from advisor_repro.errors import OfflineError
    from advisor_repro.evaluation.metrics import resolve_bertscore_model

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OfflineError) as e:
        resolve_bertscore_model("roberta-large")
    assert "roberta-large" in e.value.problem and "repro fetch" in e.value.fix


def test_unreachable_hub_exits_6_naming_the_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert main(["fetch", "--profile", "paper", "--run-dir", str(tmp_path / "run")]) == 6
    err = capsys.readouterr().err
    assert "millat/StudyAbroadGPT-Dataset" in err and "HF_HUB_OFFLINE" in err
