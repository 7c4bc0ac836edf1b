"""Preflight decisions for the GPUs the paper's recipe meets, and real checks on this CPU."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from advisor_repro.errors import ConfigError, PreflightError, ResourceError
from advisor_repro.hardware.preflight import (
    ALLOW_FLAG,
    GB,
    PAPER_MIN_VRAM_GIB,
    DeviceFacts,
    Requirement,
    _plain_words,
    arch_covered,
    decide,
    kernel_checks,
    probe_device,
)

# Arch lists of real torch wheels: CUDA 12.6 still has sm_60 (P100); CUDA 12.8 starts at sm_75.
CU126 = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]
CU128 = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]

# name, compute capability, total_memory in bytes as torch reports it
GPUS = {
    "T4": ("Tesla T4", (7, 5), 15_828_320_256),  # 14.74 GiB
    "P100": ("Tesla P100-PCIE-16GB", (6, 0), 17_059_545_088),  # 15.89 GiB
    "V100": ("Tesla V100-SXM2-16GB", (7, 0), 16_935_419_904),  # 15.77 GiB
    "A100": ("NVIDIA A100-SXM4-40GB", (8, 0), 42_505_273_344),  # 39.59 GiB
    "RTX3060": ("NVIDIA GeForce RTX 3060", (8, 6), 12_622_168_064),  # 11.76 GiB
}

PAPER = Requirement(needs_cuda=True, min_vram_gib=PAPER_MIN_VRAM_GIB, disk_needed_bytes=40 * GB)
SMOKE = Requirement(needs_cuda=False, min_vram_gib=0.0, disk_needed_bytes=2 * GB)


def facts_for(gpu: str | None, arch: list[str] = CU126, free_gb: float = 100) -> DeviceFacts:
    common = dict(
        driver_version="550.54.15" if gpu else None,
        cuda_runtime_version="12.6",
        torch_version="2.7.1+cu126",
        torch_arch_list=arch,
        free_disk_bytes=int(free_gb * GB),
        disk_path="/kaggle/working",
    )
    if gpu is None:
        return DeviceFacts("cpu", "cpu (x86_64)", None, None, **common)
    name, cc, vram = GPUS[gpu]
    return DeviceFacts("cuda", name, cc, vram, **common)


# gpu, requirement, ok, device, dtype, refusal type, words the refusal message must hold
CASES = [
    ("T4", PAPER, True, "cuda", "fp16", None, []),
    ("T4", SMOKE, True, "cuda", "fp16", None, []),
    ("P100", PAPER, True, "cuda", "fp16", None, []),
    ("P100", SMOKE, True, "cuda", "fp16", None, []),
    ("V100", PAPER, True, "cuda", "fp16", None, []),
    ("V100", SMOKE, True, "cuda", "fp16", None, []),
    ("A100", PAPER, True, "cuda", "bf16", None, []),
    ("A100", SMOKE, True, "cuda", "bf16", None, []),
    ("RTX3060", PAPER, False, "cuda", "bf16", PreflightError, ["RTX 3060", "11.76 GiB", "T4"]),
    ("RTX3060", SMOKE, True, "cuda", "bf16", None, []),
    (None, PAPER, False, "cpu", "fp32", PreflightError, ["no CUDA GPU", "--profile smoke", "T4"]),
    (None, SMOKE, True, "cpu", "fp32", None, []),
]


@pytest.mark.parametrize("gpu,req,ok,device,dtype,refusal,words", CASES)
def test_decide_table(gpu, req, ok, device, dtype, refusal, words):
    d = decide(facts_for(gpu), req)
    assert (d.ok, d.device, d.dtype) == (ok, device, dtype)
    if refusal is None:
        assert d.refusal is None
        assert all(c["ok"] for c in d.checks)
    else:
        assert type(d.refusal) is refusal
        assert d.refusal.fix  # every refusal says what to do
        for w in words:
            assert w in d.refusal.message


def test_paper_gpus_pass_without_warnings():
    for gpu in ("T4", "P100", "V100", "A100"):
        assert decide(facts_for(gpu), PAPER).warnings == []


def test_small_gpu_on_smoke_warns_about_the_paper_profile():
    d = decide(facts_for("RTX3060"), SMOKE)
    assert len(d.warnings) == 1 and "11.76 GiB" in d.warnings[0] and "14.5" in d.warnings[0]


def test_small_gpu_allowed_on_paper_profile_with_warning():
    d = decide(facts_for("RTX3060"), replace(PAPER, allow_unsupported_gpu=True))
    assert d.ok and d.refusal is None and d.device == "cuda"
    assert any("11.76 GiB" in w and "allow_unsupported_gpu" in w for w in d.warnings)


def test_no_gpu_is_not_overridable():
    d = decide(facts_for(None), replace(PAPER, allow_unsupported_gpu=True))
    assert not d.ok and isinstance(d.refusal, PreflightError)
    assert d.refusal.exit_code == 4


def test_p100_without_sm60_kernels_is_refused():
    d = decide(facts_for("P100", arch=CU128), PAPER)
    assert not d.ok and isinstance(d.refusal, PreflightError)
    msg = d.refusal.message
    assert "Tesla P100-PCIE-16GB" in msg and "sm_60" in msg and "no kernel image" in msg
    assert "CUDA 12.6" in d.refusal.fix and ALLOW_FLAG in d.refusal.fix
    arch = next(c for c in d.checks if c["name"] == "gpu_arch")
    assert arch["ok"] is False and "sm_75" in arch["detail"]


def test_p100_without_sm60_kernels_passes_when_allowed():
    d = decide(facts_for("P100", arch=CU128), replace(PAPER, allow_unsupported_gpu=True))
    assert d.ok and d.refusal is None and (d.device, d.dtype) == ("cuda", "fp16")
    assert len(d.warnings) == 1 and "sm_60" in d.warnings[0]


def test_unusable_optional_gpu_falls_back_to_cpu():
    d = decide(facts_for("P100", arch=CU128), SMOKE)
    assert d.ok and (d.device, d.dtype) == ("cpu", "fp32")
    assert any("sm_60" in w and "CPU" in w for w in d.warnings)


def test_t4_is_covered_by_a_cuda_128_build():
    assert decide(facts_for("T4", arch=CU128), PAPER).ok


@pytest.mark.parametrize("allow", [False, True])
def test_disk_shortfall_is_refused_even_when_gpu_overrides_are_allowed(allow):
    d = decide(facts_for("T4", free_gb=3), replace(PAPER, allow_unsupported_gpu=allow))
    assert not d.ok and isinstance(d.refusal, ResourceError)
    assert d.refusal.exit_code == 5
    assert "3.0 GB" in d.refusal.problem and "40.0 GB" in d.refusal.problem
    assert "/kaggle/working" in d.refusal.problem
    assert "--run-dir" in d.refusal.fix and "HF_HOME" in d.refusal.fix


def test_first_blocking_problem_is_the_refusal():
    d = decide(facts_for(None, free_gb=1), PAPER)
    assert isinstance(d.refusal, PreflightError)
    assert [c["name"] for c in d.checks if not c["ok"]] == ["cuda_gpu", "disk"]


def test_t4_reports_14_74_gib_and_passes_the_16_gb_class_threshold():
    facts = facts_for("T4")
    assert round(facts.vram_gib, 2) == 14.74
    assert round(facts_for("P100").vram_gib, 2) == 15.89
    assert "14.74 GiB" in next(c["detail"] for c in decide(facts, PAPER).checks)


@pytest.mark.parametrize(
    "cc,arch,covered",
    [
        ((7, 5), ["sm_75"], True),
        ((7, 5), ["sm_70"], True),  # cubins run on later minors of the same major
        ((8, 6), ["sm_80"], True),
        ((8, 0), ["sm_86"], False),
        ((7, 0), ["sm_75", "sm_80"], False),
        ((6, 0), CU128, False),
        ((6, 0), ["compute_50"], True),  # PTX JIT-compiles for any later capability
        ((12, 0), ["sm_90", "compute_90"], True),
        ((9, 0), ["sm_90a"], True),
        ((10, 0), ["sm_90a"], False),  # arch-specific targets do not carry forward
        ((8, 0), [], False),
    ],
)
def test_arch_covered(cc, arch, covered):
    assert arch_covered(cc, arch) is covered


def test_decision_and_facts_serialize_to_json():
    d = decide(facts_for("P100", arch=CU128), PAPER)
    out = json.loads(json.dumps({"facts": facts_for("P100").to_dict(), "decision": d.to_dict()}))
    assert out["facts"]["compute_capability"] == [6, 0]
    assert out["decision"]["refusal"]["type"] == "PreflightError"
    assert out["decision"]["refusal"]["exit_code"] == 4


# ---------------------------------------------------------------- real probes on this machine


def test_probe_cpu_on_this_machine(tmp_path: Path):
    facts = probe_device("cpu", tmp_path / "runs" / "not-yet")
    assert facts.kind == "cpu" and facts.compute_capability is None
    assert facts.total_vram_bytes is None
    assert facts.torch_version == torch.__version__
    assert facts.disk_path == str(tmp_path.resolve()) and facts.free_disk_bytes > 0
    d = decide(facts, replace(SMOKE, disk_needed_bytes=0))
    assert d.ok and (d.device, d.dtype) == ("cpu", "fp32")


def test_probe_rejects_unknown_device():
    with pytest.raises(ConfigError):
        probe_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_probe_cuda_without_gpu_is_refused():
    with pytest.raises(PreflightError, match="no CUDA GPU"):
        probe_device("cuda")


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_kernel_checks_on_cpu(dtype):
    results = kernel_checks("cpu", dtype)
    assert [r["name"] for r in results] == ["matmul", "nf4_matmul"]
    for r in results:
        assert r["ok"], r["detail"]
        assert isinstance(r["seconds"], float) and r["seconds"] >= 0
    assert "NF4" in results[1]["detail"] and "quantization error 0.09" in results[1]["detail"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_kernel_checks_report_failure_in_plain_words():
    results = kernel_checks("cuda", "fp16")
    assert [r["ok"] for r in results] == [False, False]
    assert all("CUDA" in r["detail"] for r in results)


def test_no_kernel_image_error_names_the_fix():
    exc = RuntimeError("CUDA error: no kernel image is available for execution on the device")
    text = _plain_words(exc, "cuda")
    assert text.startswith("RuntimeError: CUDA error: no kernel image")
    assert "no kernels for" in text and "CUDA 12.6" in text


# ---- the image's torch variants: the driver and the variant a GPU needs (README matrix) ----
CU130 = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]  # PyPI's torch 2.14.1


def cu130_facts(gpu: str | None, driver: str | None = "580.95.05", image: str | None = "cu130"):
    return replace(
        facts_for(gpu, arch=CU130),
        driver_version=driver,
        cuda_runtime_version="13.0",
        torch_version="2.14.1+cu130",
        image_variant=image,
    )


def test_variants_match_the_readme_matrix():
    from advisor_repro.hardware.preflight import VARIANTS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for v in VARIANTS:
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{v.name}`"))
        assert f"`{' '.join(v.arch_list)}`" in row and f"CUDA {v.cuda}" in row, row
    assert VARIANTS[0].name == "cu130" and VARIANTS[0].min_driver == "580.65.06"


def test_t4_in_the_default_image_passes_on_an_r580_driver():
    d = decide(cu130_facts("T4"), PAPER)
    assert d.ok and d.warnings == [] and (d.device, d.dtype) == ("cuda", "fp16")


def test_old_driver_names_the_driver_and_the_variant_that_runs_on_it():
    """A T4 host on R535 (CUDA 12 only): CUDA 13 cannot start, torch sees no GPU; preflight
    says why and what to do, instead of a bare "no CUDA GPU"."""
    d = decide(cu130_facts(None, driver="535.261.03"), PAPER)
    assert not d.ok and d.refusal.exit_code == 4
    msg, fix = d.refusal.message, d.refusal.fix
    assert "no CUDA GPU visible" in msg and "535.261.03" in msg and ">= 580.65.06" in msg
    assert "R580 or newer" in fix and ">= 580.65.06" in fix
    assert "docker build --build-arg TORCH_VARIANT=cu126 ." in fix and "--profile smoke" in fix


def test_old_driver_outside_the_image_names_the_pip_install():
    d = decide(cu130_facts(None, driver="535.261.03", image=None), PAPER)
    assert "download.pytorch.org/whl/cu126" in d.refusal.fix
    assert "docker build" not in d.refusal.fix


def test_driver_too_old_for_every_variant_only_asks_for_an_update():
    d = decide(cu130_facts(None, driver="470.256.02"), PAPER)
    assert "470.256.02" in d.refusal.message
    assert "update the NVIDIA driver" in d.refusal.fix and "cu126" not in d.refusal.fix


def test_old_driver_on_the_smoke_profile_warns_and_runs_on_cpu():
    d = decide(cu130_facts(None, driver="535.261.03"), SMOKE)
    assert d.ok and d.device == "cpu"
    assert len(d.warnings) == 1 and ">= 580.65.06" in d.warnings[0]


def test_no_gpu_in_the_image_says_how_to_run_it_with_a_gpu():
    d = decide(cu130_facts(None, driver=None), PAPER)
    assert "no CUDA GPU" in d.refusal.message
    fix = d.refusal.fix
    assert "--gpus all" in fix and "R580 or newer" in fix and "Container Toolkit" in fix
    assert "--profile smoke" in fix


@pytest.mark.parametrize("gpu", ["P100", "V100"])
def test_pre_turing_gpu_in_the_default_image_names_the_cu126_build(gpu):
    d = decide(cu130_facts(gpu), PAPER)
    assert not d.ok and isinstance(d.refusal, PreflightError)
    assert "docker build --build-arg TORCH_VARIANT=cu126 ." in d.refusal.fix
    assert "cu130" not in d.refusal.fix and ALLOW_FLAG in d.refusal.fix


def test_blackwell_in_the_cu126_image_names_the_default_build():
    b200 = replace(
        facts_for("A100", arch=CU126),
        name="NVIDIA B200",
        compute_capability=(10, 0),
        image_variant="cu126",
    )
    d = decide(b200, PAPER)
    assert not d.ok and "sm_100" in d.refusal.message
    assert "`docker build .`" in d.refusal.fix and "TORCH_VARIANT=cu126" not in d.refusal.fix


def test_gpu_no_variant_covers_says_so():
    kepler = replace(cu130_facts("T4"), name="Tesla K80", compute_capability=(3, 7))
    assert (
        "no torch build of this package has kernels for sm_37" in decide(kepler, PAPER).refusal.fix
    )


def test_probe_reads_the_image_variant(monkeypatch, tmp_path):
    monkeypatch.setenv("ADVISOR_REPRO_TORCH_VARIANT", "cu130")
    assert probe_device("cpu", tmp_path).image_variant == "cu130"
    monkeypatch.delenv("ADVISOR_REPRO_TORCH_VARIANT")
    assert probe_device("cpu", tmp_path).image_variant is None
