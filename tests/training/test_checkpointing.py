"""train.checkpoint_layers: the memory model's choice of how many layers to checkpoint, on
plain values; and, through the real trainer (checkpointing_run.py in a fresh process), that
leaving layers out changes no loss and no weight, only how often a layer's forward runs, and
that the choice holds through training although the Trainer turns every layer back on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from advisor_repro.config import load_config
from advisor_repro.training import checkpointing, microbatch

CAL = {"base_gib": 4.45, "gib_per_token": 0.000419, "gib_per_layer_token": 0.0001}


def test_auto_leaves_out_as_many_layers_as_the_budget_holds():
    # 8,000 tokens: 4.45 + 3.352 = 7.802 GiB with every layer checkpointed; room under
    # (14.74 - 0.5) / 1.05 = 13.562 is 5.760 GiB, 0.8 GiB a layer left out: 7 of 32
    d = checkpointing.decide(CAL, 32, 8000, 14.74, "cuda")
    assert (d.layers, d.checkpointed) == (32, 25)
    assert d.predicted_peak_gib == pytest.approx((7.802 + 7 * 0.8) * microbatch.SAFETY, abs=1e-3)
    assert d.predicted_peak_gib <= 14.74 - microbatch.HEADROOM_GIB
    assert "7 of 32 layers keep their activations" in d.reason
    # one layer more would not fit
    assert (7.802 + 8 * 0.8) * microbatch.SAFETY > 14.74 - microbatch.HEADROOM_GIB
    # a short micro-batch: none recomputed; one already over the budget: all recomputed
    assert checkpointing.decide(CAL, 32, 500, 14.74, "cuda").checkpointed == 0
    assert checkpointing.decide(CAL, 32, 40_000, 14.74, "cuda").checkpointed == 32


def test_auto_checkpoints_every_layer_without_a_calibration_or_a_gpu():
    uncalibrated = {**CAL, "gib_per_layer_token": None}
    for cal, device in ((CAL, "cpu"), (uncalibrated, "cuda"), (None, "cuda")):
        d = checkpointing.decide(cal, 32, 500, 14.74, device)
        assert d.checkpointed == 32 and d.predicted_peak_gib is None and d.share == 1.0
    assert checkpointing.decide(CAL, 32, 500, 14.74, "cpu").reason == checkpointing.CPU_REASON


def test_the_setting_off_all_and_auto():
    paper = load_config("paper").train
    assert paper.checkpoint_layers == "all"  # the notebooks: every layer
    assert checkpointing.choose(paper, CAL, 32, 500, 14.74, "cuda")["checkpointed"] == 32
    off = load_config("paper", ["train.gradient_checkpointing=false"]).train
    assert checkpointing.choose(off, CAL, 32, 500, 14.74, "cuda")["share"] == 0.0
    auto = load_config("paper", ["train.checkpoint_layers='auto'"]).train
    chosen = checkpointing.choose(auto, CAL, 32, 500, 14.74, "cuda")
    assert chosen["mode"] == "auto" and chosen["checkpointed"] == 0


def test_the_worst_micro_batch_padded_and_packed():
    lengths = [100, 900, 300, 1057, 50]
    assert checkpointing.worst_tokens(lengths, 2, 1057, padding_free=False) == 2114
    assert checkpointing.worst_tokens(lengths, 2, 1057, padding_free=True) == 1957
    assert checkpointing.worst_tokens(lengths, 8, 1088, padding_free=True) == sum(lengths)


def run_probe(backend: str, base: Path, out: Path, device: str) -> dict:
    probe = Path(__file__).with_name("checkpointing_run.py")
    done = subprocess.run([sys.executable, str(probe), backend, str(base), str(out), device],
                          env={**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"},
                          timeout=900, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text(encoding="utf-8"))


def judge(report: dict, loss_tol: float, weight_tol: float) -> None:
    import torch

    runs = report["runs"]
    n = report["layers"]
    assert n == 2 and set(runs) == {"2", "1", "0"}
    micro_batches = 3 * 2  # 3 optimizer steps of 2 micro-batches
    for k, run in runs.items():
        k = int(k)
        assert run["in_force"] == [k], (k, run["in_force"])  # held through every step
        # a checkpointed layer runs its forward twice per micro-batch, the others once
        assert sorted(run["forward_calls"]) == sorted([2 * micro_batches] * k
                                                      + [micro_batches] * (n - k)), run
        assert len(run["losses"]) == 3
    ref = runs["2"]
    ref_w = torch.tensor(ref["weights"])
    for k in ("1", "0"):
        diffs = [abs(a - b) for a, b in zip(ref["losses"], runs[k]["losses"], strict=True)]
        assert max(diffs) <= loss_tol, (k, diffs)
        w = torch.tensor(runs[k]["weights"])
        rel = float((w - ref_w).norm() / ref_w.norm())
        assert rel <= weight_tol, (k, rel)


def test_leaving_layers_out_changes_no_loss_on_the_cpu(tmp_path):
    pytest.importorskip("bitsandbytes")
    from advisor_repro.models.hub import cache_root
    from advisor_repro.models.rehearsal import random_base_dir

    base = random_base_dir(cache_root(), "tiny", create=True)
    judge(run_probe("hf", base, tmp_path / "ckpt.json", "cpu"), loss_tol=1e-5, weight_tol=1e-5)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["unsloth", "hf"])
def test_leaving_layers_out_changes_no_loss_on_the_gpu(backend, tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from advisor_repro.models.hub import cache_root
    from advisor_repro.models.rehearsal import random_base_dir

    base = random_base_dir(cache_root(), "tiny", create=True)
    # fp16 compute: a recomputed forward may pick other kernels than the first one
    judge(run_probe(backend, base, tmp_path / "ckpt.json", "cuda"), loss_tol=2e-3,
          weight_tol=2e-2)
