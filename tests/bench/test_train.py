"""bench_train: the ratios against the targets and the BENCHMARKS.md table, from a result
record of the shape the workers write (the measurements themselves need the GPU machine)."""

from __future__ import annotations

import copy

from advisor_repro.bench import utilisation
from advisor_repro.bench.train import markdown, ratios

# The issue's reference figures (H100, 15 GiB cap, fp16): Unsloth 8,625 and 10,968 tok/s,
# plain HF 2,705 tok/s at micro-batch 2 and out of memory at 4.
RESULTS = {
    "package": {"device": {"name": "NVIDIA H100 80GB HBM3", "capability": "9.0",
                           "total_gib": 79.18},
                "shapes": {"2": {"oom": False, "tokens_per_s": 8500.0, "peak_allocated_gib": 4.9,
                                 "peak_reserved_gib": 5.5, "nvml_used_gib": 6.1},
                           "4": {"oom": False, "tokens_per_s": 10800.0,
                                 "peak_allocated_gib": 5.7, "peak_reserved_gib": 6.3,
                                 "nvml_used_gib": 6.9}}},
    "unsloth": {"shapes": {"2": {"oom": False, "tokens_per_s": 8625.0},
                           "4": {"oom": False, "tokens_per_s": 10968.0}}},
    "hf": {"shapes": {"2": {"oom": False, "tokens_per_s": 2705.0, "peak_allocated_gib": 12.9,
                            "peak_reserved_gib": 13.6, "nvml_used_gib": 14.2},
                      "4": {"oom": True, "peak_allocated_gib": 13.9, "peak_reserved_gib": 14.3,
                            "nvml_used_gib": 14.9}}},
}


def test_ratios_against_the_targets():
    r = ratios(RESULTS, [2, 4])
    assert r["a/b mb2"] == {"value": 0.986, "target": 0.97, "ok": True}
    assert r["a/b mb4"]["value"] == 0.985
    assert r["a/c mb2"] == {"value": 3.142, "target": 3.0, "ok": True}
    assert r["a/c mb4"] == {"value": None, "target": 3.0, "ok": None}  # (c) ran out of memory


def test_markdown_table():
    record = {"settings": {"budget_gib": 14.74, "dtype": "fp16", "seq": 2048, "warmup": 3,
                           "steps": 10},
              "results": RESULTS, "ratios": ratios(RESULTS, [2, 4])}
    md = markdown(record)
    assert "NVIDIA H100 80GB HBM3" in md and "capped at 14.74 GiB" in md
    assert "| (a) package | 2 | 8,500 | 4.9 | 5.5 | 6.1 |" in md
    assert "| (c) hf | 4 | out of memory | 13.9 | 14.3 | 14.9 |" in md
    assert "| a/c mb4 | None | >= 3.0 | n/a |" in md


def test_mfu_and_hfu_in_the_record_and_the_table():
    results = copy.deepcopy(RESULTS)
    for res in results.values():
        res["params"] = 7_248_023_552  # what the workers count from the model's config
    record = {"settings": {"budget_gib": 14.74, "dtype": "bf16", "seq": 2048, "warmup": 3,
                           "steps": 10},
              "results": results, "ratios": ratios(results, [2, 4])}
    utilisation.annotate_paths(record)
    pkg = record["results"]["package"]["shapes"]["2"]["utilisation"]
    # 4 x 7,248,023,552 x 8,500 tokens/s / 989.4e12 = 24.9%; x 6 (checkpointing) = 37.4%
    assert (pkg["gpu"], pkg["mfu"], pkg["hfu"]) == ("H100", 0.2491, 0.3736)
    # the paths without a device of their own were measured on the same GPU
    assert record["results"]["hf"]["shapes"]["2"]["utilisation"]["mfu"] == 0.0793
    assert record["results"]["hf"]["shapes"]["4"]["utilisation"] is None  # out of memory
    md = markdown(record)
    assert "| (a) package | 2 | 8,500 | 4.9 | 5.5 | 6.1 | 24.9% | 37.4% |" in md
    assert "| (a) package | 4 | 10,800 | 5.7 | 6.3 | 6.9 | 31.6% | 47.5% |" in md
    assert "| (c) hf | 4 | out of memory | 13.9 | 14.3 | 14.9 | - | - |" in md
    assert "MFU = 4 x 7,248,023,552 parameters x tokens/s" in md
    assert "H100's dense FP16/BF16 peak of 989.4 TFLOP/s" in md


def test_an_unlisted_device_claims_no_utilisation():
    results = copy.deepcopy(RESULTS)
    results["package"]["device"]["name"] = "NVIDIA L40S"
    record = {"settings": {"budget_gib": 14.74, "dtype": "bf16", "seq": 2048, "warmup": 3,
                           "steps": 10}, "results": results, "ratios": ratios(results, [2, 4])}
    utilisation.annotate_paths(record)
    md = markdown(record)
    assert "| (a) package | 2 | 8,500 | 4.9 | 5.5 | 6.1 | - | - |" in md
    assert "no dense FP16/BF16 peak listed for this device" in md
