"""The local judge on a model that is not the smoke model: a tiny random Qwen2 of the stand-in
recipe on the CPU (the GPU check's code path at toy size), and the GPU check itself (gpu)."""

import json
import os

import pytest

from advisor_repro.config import load_config
from advisor_repro.judges import CachedJudge, ask
from advisor_repro.judges.gpu_check import build_standin, pairs
from advisor_repro.judges.local import LocalJudge
from advisor_repro.judges.rubric import pair_messages, parse_pair

TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 16064,
        "max_position_embeddings": 4096, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
        "hidden_act": "silu", "tie_word_embeddings": False, "use_sliding_window": False}


def test_standin_loads_through_the_local_judge_and_ends_unparseable(tmp_path):
    folder = build_standin(tmp_path / "standin", shape=TINY, device="cpu", conversations=40)
    assert json.loads((folder / "standin.json").read_text())["shape"] == TINY
    jc = load_config("paper", ["judge.backend='local'", "judge.max_tokens=24"]).judge
    backend = LocalJudge(folder, "tiny-qwen2", "standin", jc, "cpu", "auto")
    assert backend.identity["quant"] == "none" and backend.identity["dtype"] == "float32"
    q, right, wrong = pairs()[0]
    reply = ask(CachedJudge(backend, tmp_path / "cache"), pair_messages(q, right, wrong),
                parse_pair, "k", parse_retries=1)
    # random weights never write the rubric's JSON: recorded, not raised
    assert reply.status == "unparseable" and reply.attempts == 2
    assert len(os.listdir(tmp_path / "cache")) == 2
    backend.close()


@pytest.mark.gpu
def test_local_judge_fits_the_16gb_budget_on_the_gpu(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from advisor_repro.judges.gpu_check import main

    out = tmp_path / "check.json"
    assert main(["--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["fits"] and report["peak_reserved_gib"] <= report["budget_gib"]
    assert len(report["calls"]) == 3
