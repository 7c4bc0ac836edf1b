"""Preflight core: what the machine is (DeviceFacts), whether it can run a profile (decide),
and whether its kernels actually work (kernel_checks).

`decide` is pure so every GPU of the paper can be tested on a laptop; the probes are thin.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from advisor_repro.errors import ConfigError, PreflightError, ResourceError
from advisor_repro.hardware.gpu import GIB

GB = 1000**3  # disk sizes are quoted in decimal GB, as `df -H` and cloud consoles do

# "16 GB class": a T4 reports 14.74 GiB and a P100 15.89 GiB; both ran the paper's recipe.
PAPER_MIN_VRAM_GIB = 14.5

ALLOW_FLAG = "--allow-unsupported-gpu"  # = --set hardware.allow_unsupported_gpu=true


@dataclass(frozen=True)
class TorchVariant:
    """One of the image's torch builds (the Dockerfile's TORCH_VARIANT; README, "Architecture
    matrix"): its CUDA, the kernels `torch.cuda.get_arch_list()` lists in it, the oldest
    driver its CUDA runs on, and how to get it in the image and outside."""

    name: str
    cuda: str
    arch_list: tuple[str, ...]
    driver: str  # the driver branch's minimum, as the README names it
    min_driver: str  # the minimum NVIDIA driver (minor version compatibility)
    docker: str
    pip: str


VARIANTS = (
    TorchVariant(
        "cu130", "13.0", ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"),
        "R580 or newer", "580.65.06", "docker build .",
        "pip install torch==2.14.1 (PyPI's build is CUDA 13.0)",
    ),
    TorchVariant(
        "cu126", "12.6", ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"),
        "R535 or newer", "525.60.13", "docker build --build-arg TORCH_VARIANT=cu126 .",
        "pip install torch==2.14.1 --index-url https://download.pytorch.org/whl/cu126",
    ),
)
# The oldest driver each CUDA major runs on (minor version compatibility: CUDA 12.x on
# >= 525.60.13, CUDA 13.x on >= 580.65.06; NVIDIA's CUDA release notes).
MIN_DRIVER_FOR_CUDA = {12: "525.60.13", 13: "580.65.06"}
# Set in the image (Dockerfile): which TORCH_VARIANT it was built with.
IMAGE_VARIANT_ENV = "ADVISOR_REPRO_TORCH_VARIANT"


@dataclass(frozen=True)
class DeviceFacts:
    kind: str  # "cuda" or "cpu"
    name: str  # GPU name as the driver reports it, or "cpu (x86_64)"
    compute_capability: tuple[int, int] | None  # (major, minor); None on CPU
    total_vram_bytes: int | None  # device total, not free; None on CPU
    driver_version: str | None  # NVIDIA driver, from NVML when it is available
    cuda_runtime_version: str | None  # torch.version.cuda; None for a CPU-only torch build
    torch_version: str
    torch_arch_list: list[str]  # kernels compiled into torch, e.g. ["sm_75", "compute_90"]
    free_disk_bytes: int  # free space on the run directory's filesystem
    disk_path: str = ""  # the existing folder whose filesystem was measured
    image_variant: str | None = None  # the image's TORCH_VARIANT; None outside the image

    @property
    def vram_gib(self) -> float | None:
        return None if self.total_vram_bytes is None else self.total_vram_bytes / GIB

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        cc = self.compute_capability
        d["compute_capability"] = None if cc is None else list(cc)
        return d


class Check(TypedDict):
    """One line of preflight's verdict in decision.json / report.json."""

    name: str
    ok: bool
    detail: str


class KernelCheck(Check):
    seconds: float


class Refusal(TypedDict):
    type: str
    exit_code: int
    problem: str
    fix: str


class DecisionJson(TypedDict):
    ok: bool
    device: str
    dtype: str
    checks: list[Check]
    warnings: list[str]
    refusal: Refusal | None


@dataclass(frozen=True)
class Requirement:
    needs_cuda: bool  # the paper profile needs a GPU; the smoke profile runs anywhere
    min_vram_gib: float  # total device memory, in GiB (PAPER_MIN_VRAM_GIB for the paper)
    disk_needed_bytes: int  # models + checkpoints + outputs the plan will write
    allow_unsupported_gpu: bool = False  # turn GPU refusals (VRAM, arch) into warnings


@dataclass(frozen=True)
class Decision:
    ok: bool
    device: str  # "cuda" or "cpu"
    dtype: str  # "bf16", "fp16" or "fp32"
    checks: list[Check] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refusal: PreflightError | ResourceError | None = None  # the first blocking problem

    def to_dict(self) -> DecisionJson:
        r = self.refusal
        refusal: Refusal | None = r and Refusal(type=type(r).__name__, exit_code=r.exit_code,
                                                problem=r.problem, fix=r.fix)
        return DecisionJson(ok=self.ok, device=self.device, dtype=self.dtype,
                            checks=self.checks, warnings=self.warnings, refusal=refusal)


@dataclass(frozen=True)
class _Finding:
    name: str
    ok: bool
    detail: str
    error: PreflightError | ResourceError | None = None
    overridable: bool = False  # allow_unsupported_gpu turns the error into a warning
    warning: str | None = None  # passes, but the user should know


# ---------------------------------------------------------------- the decision (pure)


def arch_covered(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """True if torch has a kernel binary or PTX that runs on a GPU of this capability.

    A cubin sm_XY runs on X.Z for Z >= Y (same major); PTX compute_XY JITs to any capability
    >= X.Y. Arch-specific targets (sm_90a) run only on their exact capability.
    """
    return any(_entry_covers(entry, capability) for entry in arch_list)


def _entry_covers(entry: str, capability: tuple[int, int]) -> bool:
    m = re.fullmatch(r"(sm|compute)_(\d+)(\d)([a-z]?)", entry.strip())
    if not m:
        return False
    kind, target = m[1], (int(m[2]), int(m[3]))
    if m[4] == "a":
        return target == capability
    if kind == "sm":
        return target[0] == capability[0] and target[1] <= capability[1]
    return target <= capability


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


def _sm(capability: tuple[int, int]) -> str:
    return f"sm_{capability[0]}{capability[1]}"


def arch_fix(capability: tuple[int, int] | None, image_variant: str | None = None) -> str:
    """What to run instead when this torch build has no kernels for the GPU: the variant whose
    arch list covers it, as a `docker build` in the image and a `pip install` outside it."""
    covering = (
        [v for v in VARIANTS if arch_covered(capability, list(v.arch_list))]
        if capability is not None
        else list(VARIANTS)
    )
    if not covering:
        return (
            f"no torch build of this package has kernels for {_sm(capability)} "
            "(README, \"Architecture matrix\")"
        )
    what = "build the image's" if image_variant else "install torch's"
    ways = " or ".join(
        f"{v.name} variant (CUDA {v.cuda}: {v.arch_list[0]} to {v.arch_list[-1]}, driver "
        f"{v.driver}): `{v.docker if image_variant else v.pip}`"
        for v in covering
    )
    return f"{what} {ways} (README, \"Architecture matrix\")"


def driver_too_old(facts: DeviceFacts) -> str | None:
    """Why CUDA cannot start: the NVIDIA driver (from NVML) is older than torch's CUDA needs.
    None when it is new enough or either version is unknown."""
    if facts.driver_version is None or facts.cuda_runtime_version is None:
        return None
    need = MIN_DRIVER_FOR_CUDA.get(_version_key(facts.cuda_runtime_version)[0])
    if need is None or _version_key(facts.driver_version) >= _version_key(need):
        return None
    return (
        f"the NVIDIA driver {facts.driver_version} is older than torch {facts.torch_version}'s "
        f"CUDA {facts.cuda_runtime_version} needs (>= {need})"
    )


def _driver_fix(facts: DeviceFacts) -> str:
    mine = next((v for v in VARIANTS if v.cuda == facts.cuda_runtime_version), None)
    need = MIN_DRIVER_FOR_CUDA[_version_key(facts.cuda_runtime_version or "13")[0]]
    branch = f"{mine.driver}, " if mine else ""
    update = f"update the NVIDIA driver ({branch}>= {need})"
    older = [
        v
        for v in VARIANTS
        if _version_key(facts.driver_version or "0") >= _version_key(v.min_driver)
        and v is not mine
    ]
    if not older:
        return update
    v = older[0]
    how = v.docker if facts.image_variant else v.pip
    return (
        f"{update}, or use the {v.name} variant (CUDA {v.cuda}: {v.arch_list[0]} to "
        f"{v.arch_list[-1]}), which runs on this driver: `{how}` (README, \"Architecture matrix\")"
    )


def _gpu_name(facts: DeviceFacts) -> str:
    cc = facts.compute_capability
    gib = f", {facts.vram_gib:.2f} GiB" if facts.vram_gib is not None else ""
    return f"{facts.name} (compute capability {cc[0]}.{cc[1]}{gib})" if cc else facts.name


def _check_gpu_present(facts: DeviceFacts, req: Requirement) -> _Finding:
    if facts.kind == "cuda":
        return _Finding("cuda_gpu", True, f"found {_gpu_name(facts)}")
    build = f"torch {facts.torch_version}, CUDA runtime {facts.cuda_runtime_version or 'none'}"
    detail = f"no CUDA GPU visible ({facts.name}; {build})"
    old = driver_too_old(facts)
    if old:
        detail += f": {old}"
    if not req.needs_cuda:
        return _Finding("cuda_gpu", True, detail + "; this profile runs on CPU", warning=old)
    if old:
        fix = _driver_fix(facts) + "; or use `--profile smoke` for the CPU replay"
    elif facts.image_variant and facts.image_variant != "cpu":
        v = next((v for v in VARIANTS if v.name == facts.image_variant), VARIANTS[0])
        fix = (
            f"run the image on a host with a CUDA GPU of >= {req.min_vram_gib:g} GiB (e.g. a "
            f"T4), an NVIDIA driver {v.driver} and the NVIDIA Container Toolkit, with "
            "`docker run --gpus all ...`; or use `--profile smoke` for the CPU replay"
        )
    else:
        fix = (
            f"run on a CUDA GPU with >= {req.min_vram_gib:g} GiB (e.g. a Kaggle or Colab T4), "
            "or use `--profile smoke` for the CPU replay"
        )
    error = PreflightError(f"this profile needs a CUDA GPU, but there is {detail}", fix)
    return _Finding("cuda_gpu", False, detail, error)


def _check_vram(facts: DeviceFacts, req: Requirement) -> _Finding | None:
    if facts.kind != "cuda":
        return None
    have = facts.vram_gib
    if have is None:
        return _Finding("vram", True, "total GPU memory unknown", warning="GPU memory unknown")
    detail = f"{facts.name} has {have:.2f} GiB; this profile needs >= {req.min_vram_gib:g} GiB"
    if have >= req.min_vram_gib:
        small = have < PAPER_MIN_VRAM_GIB
        warning = f"{detail}, but the paper profile would need >= {PAPER_MIN_VRAM_GIB:g} GiB"
        return _Finding("vram", True, detail, warning=warning if small else None)
    error = PreflightError(
        f"{_gpu_name(facts)} has too little memory: {have:.2f} GiB, "
        f"this profile needs >= {req.min_vram_gib:g} GiB",
        "run on a 16 GB class GPU (e.g. a Kaggle or Colab T4 or P100), use `--profile smoke`, "
        f"or pass {ALLOW_FLAG} to try anyway",
    )
    return _Finding("vram", False, detail, error, overridable=True)


def _check_arch(facts: DeviceFacts, req: Requirement) -> _Finding | None:
    cc = facts.compute_capability
    if facts.kind != "cuda" or cc is None:
        return None
    sm = _sm(cc)
    arches = " ".join(facts.torch_arch_list) or "none"
    if arch_covered(cc, facts.torch_arch_list):
        return _Finding("gpu_arch", True, f"torch {facts.torch_version} has kernels for {sm}")
    detail = f"torch {facts.torch_version} has no kernels for {sm} (it has: {arches})"
    error = PreflightError(
        f"{_gpu_name(facts)} is not supported by this torch build: {detail}; every CUDA op "
        "would fail with 'no kernel image is available for execution on the device'",
        f"{arch_fix(cc, facts.image_variant)}, or pass {ALLOW_FLAG} to try anyway",
    )
    return _Finding("gpu_arch", False, detail, error, overridable=True)


def _check_disk(facts: DeviceFacts, req: Requirement) -> _Finding:
    free, need = facts.free_disk_bytes / GB, req.disk_needed_bytes / GB
    where = f" on {facts.disk_path}" if facts.disk_path else ""
    detail = f"{free:.1f} GB free{where}; the plan needs {need:.1f} GB"
    if facts.free_disk_bytes >= req.disk_needed_bytes:
        return _Finding("disk", True, detail)
    error = ResourceError(
        f"not enough disk: {detail}",
        f"free at least {need - free:.1f} GB there, or point --run-dir / HF_HOME to a larger disk",
    )
    return _Finding("disk", False, detail, error)


def _pick_dtype(facts: DeviceFacts, device: str) -> str:
    # Not torch.cuda.is_bf16_supported(): it answers yes on a T4, where bf16 is emulated.
    if device != "cuda" or facts.compute_capability is None:
        return "fp32"
    return "bf16" if facts.compute_capability[0] >= 8 else "fp16"


def decide(facts: DeviceFacts, req: Requirement) -> Decision:
    """Can this machine run this requirement, on which device, in which dtype? Pure."""
    checks: list[Check] = []
    warnings: list[str] = []
    refusal: PreflightError | ResourceError | None = None
    gpu_usable = facts.kind == "cuda"
    for check in (_check_gpu_present, _check_vram, _check_arch, _check_disk):
        f = check(facts, req)
        if f is None:
            continue
        checks.append(Check(name=f.name, ok=f.ok, detail=f.detail))
        if f.warning:
            warnings.append(f.warning)
        if f.ok or f.error is None:
            continue
        if f.overridable and req.allow_unsupported_gpu:
            warnings.append(f"{f.error.problem} (going on: hardware.allow_unsupported_gpu)")
        elif f.overridable and not req.needs_cuda:
            # An optional GPU we cannot use: the CPU replay still works.
            gpu_usable = False
            warnings.append(f"{f.error.problem}; using the CPU instead")
        elif refusal is None:
            refusal = f.error
    device = "cuda" if gpu_usable else "cpu"
    dtype = _pick_dtype(facts, device)
    why = " (bf16 needs compute capability >= 8.0)" if dtype == "fp16" else ""
    checks.append({"name": "dtype", "ok": True, "detail": f"{dtype} on {device}{why}"})
    return Decision(refusal is None, device, dtype, checks, warnings, refusal)


# ---------------------------------------------------------------- probes (thin I/O)


def _free_disk(run_dir: Path) -> tuple[int, str]:
    """Free bytes on the filesystem that will hold run_dir (its nearest existing parent)."""
    p = Path(run_dir).resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free, str(p)


def _nvml_driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            v = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return v.decode() if isinstance(v, bytes) else str(v)
    except Exception:  # no NVML, no driver, no GPU: the version is simply unknown
        return None


def probe_device(want: str = "auto", run_dir: Path = Path(".")) -> DeviceFacts:
    """Describe the device `want` ("auto", "cuda" or "cpu") and the run directory's disk."""
    import torch

    if want not in ("auto", "cuda", "cpu"):
        raise ConfigError(f"unknown device {want!r}", "use one of: auto, cuda, cpu")
    use_cuda = want != "cpu" and torch.cuda.is_available()
    if want == "cuda" and not use_cuda:
        raise PreflightError(
            f"device 'cuda' was asked for, but torch {torch.__version__} sees no CUDA GPU",
            "run on a machine with a CUDA GPU and a CUDA torch build, or set hardware.device "
            "to auto (--set hardware.device='auto')",
        )
    free, disk_path = _free_disk(run_dir)
    common = dict(
        driver_version=_nvml_driver_version(),
        cuda_runtime_version=torch.version.cuda,
        torch_version=torch.__version__,
        torch_arch_list=list(torch.cuda.get_arch_list()),
        free_disk_bytes=free,
        disk_path=disk_path,
        image_variant=os.environ.get(IMAGE_VARIANT_ENV) or None,
    )
    if not use_cuda:
        name = f"cpu ({platform.machine() or 'unknown'})"
        return DeviceFacts("cpu", name, None, None, **common)
    i = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(i)
    cc = tuple(torch.cuda.get_device_capability(i))
    return DeviceFacts("cuda", props.name, cc, int(props.total_memory), **common)


# ---------------------------------------------------------------- kernel checks (on device)

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
# Relative Frobenius error allowed against an fp32 CPU result from the same rounded inputs.
# Loose enough for any accumulation order (cuBLAS split-K, tensor cores); a broken kernel
# gives errors near 1.
_TOL = {"fp32": 1e-4, "fp16": 5e-3, "bf16": 3e-2}
_NF4_MAX_QUANT_ERROR = 0.15  # NF4 blocksize 64 reconstructs a Gaussian weight to about 0.09


def _rel_err(out: Any, ref: Any) -> float:
    return float((out.float().cpu() - ref).norm() / ref.norm())


def _matmul_check(device: str, dtype: str) -> tuple[bool, str]:
    import torch

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 96, generator=g), torch.randn(96, 32, generator=g)
    dt = getattr(torch, _DTYPES[dtype])
    a, b = a.to(dt), b.to(dt)
    ref = a.float() @ b.float()
    err = _rel_err(a.to(device) @ b.to(device), ref)
    ok = err <= _TOL[dtype]
    return ok, f"{dtype} 64x96 @ 96x32 on {device}: relative error {err:.2e} vs CPU fp32"


def _nf4_check(device: str, dtype: str) -> tuple[bool, str]:
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnbf
    import torch

    g = torch.Generator().manual_seed(0)
    dt = getattr(torch, _DTYPES[dtype])
    w = torch.randn(64, 128, generator=g).to(dt).to(device)
    q, state = bnbf.quantize_4bit(w, quant_type="nf4", blocksize=64, compress_statistics=True)
    w_deq = bnbf.dequantize_4bit(q, state).float().cpu()
    quant_err = _rel_err(w_deq, w.float().cpu())
    errs = []
    for rows in (8, 1):  # 8 rows: the dequantize+matmul path (training); 1: the gemv path
        x = torch.randn(rows, 128, generator=g).to(dt)
        out = bnb.matmul_4bit(x.to(device), q.t(), quant_state=state)
        errs.append(_rel_err(out, x.float() @ w_deq.t()))
    ok = quant_err <= _NF4_MAX_QUANT_ERROR and max(errs) <= _TOL[dtype]
    detail = (
        f"bitsandbytes {bnb.__version__} NF4 (double quant) {dtype} on {device}: "
        f"quantization error {quant_err:.3f}, matmul error {errs[0]:.2e} (batch 8), "
        f"{errs[1]:.2e} (batch 1) vs the dequantized weight"
    )
    return ok, detail


def _plain_words(exc: BaseException, device: str) -> str:
    text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    if "no kernel image is available" in text:
        cc = None
        with contextlib.suppress(Exception):  # the capability only sharpens the message
            import torch

            cc = tuple(torch.cuda.get_device_capability())
        sm = _sm(cc) if cc else "this GPU"
        fix = arch_fix(cc, os.environ.get(IMAGE_VARIANT_ENV) or None)
        return f"{text}: this torch build has no kernels for {sm}; {fix}"
    if isinstance(exc, ImportError):
        return f"{text}: install it into this environment (pip install bitsandbytes)"
    if "out of memory" in text.lower():
        return f"{text}: the {device} is out of memory; another process may be holding it"
    return text


def kernel_checks(device: str, dtype: str = "fp32") -> list[KernelCheck]:
    """Run a tiny matmul and a bitsandbytes NF4 matmul on `device`; never raises."""
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, not {dtype!r}")
    results: list[KernelCheck] = []
    for name, check in (("matmul", _matmul_check), ("nf4_matmul", _nf4_check)):
        start = time.perf_counter()
        try:
            ok, detail = check(device, dtype)
        except Exception as exc:  # a broken kernel is a finding, not a crash
            ok, detail = False, _plain_words(exc, device)
        seconds = round(time.perf_counter() - start, 4)
        results.append(KernelCheck(name=name, ok=ok, detail=detail, seconds=seconds))
    return results
