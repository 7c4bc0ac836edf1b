"""The one typed Config: profiles, overrides, and refusals that name the key and the file."""

from pathlib import Path

import pytest

from advisor_repro.config import Recipe, load_config
from advisor_repro.errors import ConfigError


def test_paper_profile_carries_the_paper_settings():
    cfg = load_config("paper")
    t = cfg.train
    assert (t.lora.r, t.lora.alpha, t.lora.dropout, t.lora.bias) == (16, 32, 0.0, "none")
    assert len(t.lora.target_modules) == 7 and t.lora.expected_trainable == 41_943_040
    assert (t.segment1.epochs, t.segment1.micro_batch, t.segment1.grad_accum) == (1, 2, 4)
    assert (t.segment1.lr, t.segment1.warmup_ratio) == (2e-4, 0.03)
    assert (t.max_seq_length, t.max_grad_norm, t.weight_decay, t.seed) == (2048, 0.3, 0.0, 42)
    assert t.optimizer == "adamw_8bit" and t.lr_scheduler == "linear" and not t.packing
    assert cfg.data.source == "hf:millat/StudyAbroadGPT-Dataset"
    assert (cfg.data.expected_train, cfg.data.expected_test, cfg.data.eval_prompts) == (
        2274,
        402,
        50,
    )
    assert cfg.generate.caps == [256, 512] and cfg.judge.cap == 256
    assert cfg.model.train_base == "unsloth/mistral-7b-instruct-v0.3-bnb-4bit"
    assert cfg.metrics.bertscore_model == "roberta-large" and cfg.metrics.bertscore_rescale


def test_segment2_recipe_is_a_named_choice_defaulting_to_the_logged_run():
    logged = load_config("paper").train.segment2
    assert logged.recipe == "logged"
    assert logged.resolved() == Recipe(micro_batch=4, grad_accum=8, lr=2e-4, warmup_ratio=0.03)
    notebook = load_config("paper", ["train.segment2.recipe='notebook'"]).train.segment2
    assert notebook.resolved() == Recipe(micro_batch=2, grad_accum=8, lr=1e-4, warmup_ratio=0.05)


def test_set_override_on_top_of_the_recipe():
    cfg = load_config("paper", ["train.segment2.lr=1e-4", "train.segment2.warmup_ratio=0"])
    r = cfg.train.segment2.resolved()
    assert (r.lr, r.warmup_ratio, r.micro_batch) == (1e-4, 0.0, 4)
    assert cfg.hash != load_config("paper").hash


def test_bare_word_override_is_a_string():
    cfg = load_config("smoke", ["data.source=/tmp/somewhere"])
    assert cfg.data.source == "/tmp/somewhere"


def test_smoke_extends_paper_and_changes_only_scale():
    smoke, paper = load_config("smoke"), load_config("paper")
    assert smoke.run.name == "smoke" and smoke.data.source == "builtin:smoke"
    assert smoke.train.lora.r == paper.train.lora.r
    assert smoke.train.segment2.recipe == paper.train.segment2.recipe
    assert not smoke.hardware.require_cuda and smoke.model.backend == "hf"


def _profile(tmp_path: Path, body: str) -> str:
    path = tmp_path / "mine.toml"
    path.write_text('extends = "smoke"\n' + body)
    return str(path)


def test_unknown_key_names_key_and_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(_profile(tmp_path, "[train.lora]\nrank = 8\n"))
    assert "train.lora.rank" in err.value.problem and "mine.toml" in err.value.problem
    assert "r," in err.value.fix  # lists the valid keys


def test_wrong_type_names_key_and_expected_type(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(_profile(tmp_path, '[train.segment1]\nmicro_batch = "two"\n'))
    assert "train.segment1.micro_batch" in err.value.problem and "int" in err.value.problem


def test_bool_is_not_an_int(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.segment1\.epochs"):
        load_config(_profile(tmp_path, "[train.segment1]\nepochs = true\n"))


def test_bad_choice_lists_the_choices():
    with pytest.raises(ConfigError, match="'logged', 'notebook'"):
        load_config("paper", ["train.segment2.recipe='colab'"])


def test_unknown_override_key_is_refused():
    with pytest.raises(ConfigError, match=r"--set.*unknown key 'train\.segment3'"):
        load_config("paper", ["train.segment3.lr=1"])


def test_malformed_override_is_refused():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config("paper", ["train.segment2.lr"])


def test_unknown_profile_lists_the_profiles():
    with pytest.raises(ConfigError) as err:
        load_config("papre")
    assert "paper" in err.value.fix and "smoke" in err.value.fix


def test_cross_field_check():
    with pytest.raises(ConfigError, match="warmup_ratio"):
        load_config("paper", ["train.segment1.warmup_ratio=1.5"])


def test_section_hash_depends_only_on_its_slice():
    a = load_config("smoke")
    b = load_config("smoke", ["train.segment2.lr=1e-4"])
    assert a.section_hash("data") == b.section_hash("data")
    assert a.section_hash("train") != b.section_hash("train")
