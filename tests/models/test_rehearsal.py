"""The rehearsal base: the exact Mistral-7B-Instruct-v0.3 shape with random weights."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from advisor_repro.errors import OfflineError
from advisor_repro.models.rehearsal import describe, mistral_config, random_base_dir


def test_full_config_is_the_mistral_7b_v0_3_shape():
    cfg = mistral_config("full")
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers) == (4096, 14336, 32)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.vocab_size) == (32, 8, 32768)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    # 7,248,023,552 for the v0.3 architecture; PAPER.md quotes 7,241,731,200 (as printed by the
    # author's tooling): a 6,292,352 difference recorded in repro/deviations.toml.
    assert sum(p.numel() for p in model.parameters()) == 7_248_023_552


def test_missing_base_names_the_fetch_command(tmp_path):
    with pytest.raises(OfflineError) as err:
        random_base_dir(tmp_path, "tiny")
    assert "repro fetch --profile rehearsal" in err.value.fix


def test_tiny_base_is_created_once_and_loads_with_mistral_chat_template(tmp_path):
    folder = random_base_dir(tmp_path, "tiny", create=True)
    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    assert random_base_dir(tmp_path, "tiny", create=True) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert describe(folder)["params"] == sum(p.numel() for p in model.parameters())
    assert len(tok) <= 32768 and model.config.vocab_size == 32768
    text = tok.apply_chat_template([{"role": "user", "content": "Tuition?"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text == "<s>[INST] Tuition? [/INST]"
    ids = tok("Apply before the deadline.")["input_ids"]
    assert tok.decode(ids) == "Apply before the deadline."
