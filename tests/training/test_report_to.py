"""train.report_to: TRL's logging integrations, passed through to SFTConfig; no token of such a
service is ever part of the configuration, the manifest or the report."""

import dataclasses

import pytest

from advisor_repro.config import Train, load_config
from advisor_repro.errors import ConfigError
from advisor_repro.manifest import write_manifest
from advisor_repro.training.segments import plan_for
from advisor_repro.training.trainer import sft_arguments


def arguments(cfg, tmp_path):
    plan = plan_for(cfg, "train-1", n_train=100)
    return sft_arguments(plan, plan.shape, cfg.train, "cpu", "fp32", tmp_path, {})


@pytest.mark.parametrize("target", ["none", "tensorboard", "wandb", "trackio"])
def test_report_to_reaches_the_trainer(target, tmp_path):
    cfg = load_config("smoke", [f"train.report_to='{target}'"])
    assert arguments(cfg, tmp_path)["report_to"] == target


def test_default_is_none_and_an_unknown_service_is_refused(tmp_path):
    assert arguments(load_config("smoke", []), tmp_path)["report_to"] == "none"
    with pytest.raises(ConfigError) as err:
        load_config("smoke", ["train.report_to='mlflow'"])
    assert "report_to" in str(err.value)


def test_no_token_in_the_config_or_the_manifest(tmp_path, monkeypatch):
    secret = "wandb-secret-0123456789abcdef0123"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    names = [f.name for f in dataclasses.fields(Train)]
    assert not [n for n in names if "token" in n or "key" in n]
    cfg = load_config("smoke", ["train.report_to='wandb'"])
    write_manifest(tmp_path, cfg, "smoke", ["train.report_to='wandb'"], "repro all")
    text = (tmp_path / "manifest.json").read_text()
    assert '"report_to": "wandb"' in text and secret not in text
