"""Stage `preflight`: can this machine run this profile? Decided in seconds, before any work.

Probes the device (name, compute capability, VRAM, driver/CUDA, torch's arch list), decides
the compute dtype from the capability (bf16 only on sm >= 8: a T4 "supports" bf16 only by
emulation), checks free disk against the plan's estimate, then runs one tiny matmul and one
bitsandbytes NF4 matmul on the device, because CUDA can say "available" on a GPU the build
has no kernels for. The pure decision lives in advisor_repro.hardware.preflight.

Outputs: report.json (everything seen), decision.json (device + dtype: the only part later
stages depend on, so moving from a P100 to a T4, both fp16, does not invalidate them).
"""

from __future__ import annotations

from advisor_repro.config import Config
from advisor_repro.errors import PreflightError
from advisor_repro.files import write_json
from advisor_repro.hardware.gpu import GIB
from advisor_repro.hardware.preflight import (
    Requirement,
    arch_fix,
    decide,
    kernel_checks,
    probe_device,
)
from advisor_repro.manifest import update_manifest
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult


def disk_needed(cfg: Config, plan_bytes: int) -> int:
    """The registered stages' disk estimates (`plan_bytes`) plus the profile's margin."""
    return int(plan_bytes + cfg.hardware.disk_margin_gib * GIB)


def requirement(cfg: Config, plan_bytes: int) -> Requirement:
    hw = cfg.hardware
    return Requirement(
        needs_cuda=hw.require_cuda,
        min_vram_gib=hw.min_vram_gib,
        disk_needed_bytes=disk_needed(cfg, plan_bytes),
        allow_unsupported_gpu=hw.allow_unsupported_gpu,
    )


def pick_backend(wanted: str, device: str, cc: tuple[int, int] | None) -> tuple[str, str]:
    """Unsloth needs a CUDA GPU of compute capability >= 7.0 (its Triton kernels); elsewhere
    (a P100, the CPU) the `hf` backend runs the same QLoRA recipe. Returns (backend, warning)."""
    if wanted != "unsloth":
        return wanted, ""
    if device != "cuda" or cc is None:
        return "hf", "the unsloth backend needs a CUDA GPU; using the hf backend on the CPU"
    if cc < (7, 0):
        return "hf", (f"the unsloth backend needs compute capability >= 7.0 (Triton), this GPU "
                      f"is {cc[0]}.{cc[1]}; using the hf backend (transformers + bitsandbytes + "
                      "PEFT + TRL), as the paper's P100 segment would need today")
    return "unsloth", ""


def run(cfg: Config, ctx: StageContext) -> StageResult:
    want = "cpu" if cfg.hardware.device == "cpu" else "auto"  # "cuda" is judged by decide()
    facts = probe_device(want, ctx.run_dir)
    req = requirement(cfg, ctx.plan_disk_bytes)
    decision = decide(facts, req)
    report = {
        "device": facts.to_dict(),
        "decision": decision.to_dict(),
        "disk_needed_bytes": req.disk_needed_bytes,
        "kernel_checks": [],
    }
    write_json(ctx.out / "report.json", report)
    if decision.refusal is not None:
        raise decision.refusal
    warnings = list(decision.warnings)
    checks = kernel_checks(decision.device, decision.dtype)
    report["kernel_checks"] = checks
    write_json(ctx.out / "report.json", report)
    failed = [c for c in checks if not c["ok"]]
    if failed:
        detail = "; ".join(f"{c['name']}: {c['detail']}" for c in failed)
        if not cfg.hardware.allow_unsupported_gpu:
            raise PreflightError(
                f"{facts.name}: a test operation failed on the device ({detail})",
                f"{arch_fix(facts.compute_capability, facts.image_variant)}, or check the "
                "driver; --set hardware.allow_unsupported_gpu=true goes on anyway",
            )
        warnings.append(f"kernel check failed and was overridden: {detail}")
    backend, why = pick_backend(cfg.model.backend, decision.device, facts.compute_capability)
    if why:
        warnings.append(why)
    write_json(ctx.out / "decision.json",
               {"device": decision.device, "dtype": decision.dtype, "backend": backend})
    if warnings:
        update_manifest(ctx.run_dir, "warnings", [f"preflight: {w}" for w in warnings])
    vram = facts.vram_gib
    return StageResult(
        figures={
            "device": facts.name,
            "dtype": decision.dtype,
            **({"vram_gib": round(vram, 2)} if vram else {}),
            **(
                {"cc": ".".join(map(str, facts.compute_capability))}
                if facts.compute_capability
                else {}
            ),
        },
        warnings=warnings,
    )


def device_identity(cfg: Config) -> dict[str, str]:
    """Preflight reruns when the machine changes (a P100 session, then a T4 session)."""
    facts = probe_device("cpu" if cfg.hardware.device == "cpu" else "auto")
    return {
        "device": f"{facts.kind}|{facts.name}|{facts.compute_capability}|"
        f"{facts.total_vram_bytes}|torch {facts.torch_version}"
    }


STAGE = Stage(
    name="preflight",
    summary="check the GPU (name, capability, VRAM), dtype, disk, and real test kernels",
    run=run,
    config=("hardware",),
    external=device_identity,
    estimate=lambda cfg: Estimate(seconds=15),
)
