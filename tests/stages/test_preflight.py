"""Stage `preflight`: the backend choice by compute capability, and the CPU run."""

import pytest

from advisor_repro.stages.preflight import pick_backend


@pytest.mark.parametrize(
    ("device", "cc", "expected"),
    [
        ("cuda", (7, 5), "unsloth"),  # T4
        ("cuda", (8, 0), "unsloth"),  # A100
        ("cuda", (7, 0), "unsloth"),  # V100
        ("cuda", (6, 0), "hf"),  # P100: no Triton kernels for sm_60
        ("cpu", None, "hf"),
    ],
)
def test_backend_follows_compute_capability(device, cc, expected):
    backend, why = pick_backend("unsloth", device, cc)
    assert backend == expected
    assert bool(why) == (expected == "hf")


def test_hf_backend_is_kept_everywhere():
    assert pick_backend("hf", "cuda", (9, 0)) == ("hf", "")
