"""`repro plan --gpu NAME`: the time each stage of a profile takes on a named GPU, projected
from costs measured on an H100 under the 16 GB cap (`measured_h100.toml`). Pure: no torch.

The model, stated so it can be checked:
  - GPU work (training steps, decoding steps, local judge calls) is scaled by the GPU's dense
    FP16 throughput ratio to the H100 (`gpus.toml`, NVIDIA datasheet peaks). Training a 7B
    QLoRA model at these shapes is compute-bound on every listed GPU (one micro-step at
    2 x 2,048 tokens is ~1.8e14 FLOP against ~11 GB of weight reads), so the FLOP ratio is the
    bound that matters.
  - Fixed costs (process start, loading and quantizing the base, saving) are kept as measured.
  - Where Unsloth cannot run (the P100) the hf backend is slower by the factor `repro bench
    train` measured.
  - Datasheet peaks are what a chip reaches at full clock; a 70 W T4 sustains less. So the
    projection is a lower bound on time, and for the two GPUs the paper timed it is set next
    to the paper's wall-clock (`paper_comparison`).
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, TypedDict, cast

from advisor_repro.config import Config
from advisor_repro.errors import ConfigError
from advisor_repro.training import segments

PAPER_GPU = {"train-1": "P100", "train-2": "T4"}  # where the paper's segments ran


@dataclass(frozen=True)
class GpuWork:
    """What a stage declares (`Stage.gpu_work`) about its GPU work, so that it can be projected
    onto another GPU: `train` (a QLoRA segment: the step plan of the stage's name), `generate`
    (both models' answers), `judged` (`calls(cfg)` judge calls and `rest_s` seconds of other
    work). A stage that declares none keeps its own estimate, or its measured `fixed_s`."""

    kind: Literal["train", "generate", "judged"]
    calls: Callable[[Config], int] | None = None
    rest_s: float = 0.0


@dataclass(frozen=True)
class Planned:
    """A stage as the projection sees it: its name, its own estimate, what it declares."""

    name: str
    own_s: float
    work: GpuWork | None = None


class StepCost(TypedDict, total=False):
    step_s: float  # one optimizer step
    tokens: int  # tokens in it
    gpu: str  # where it was measured (a gpus.toml key)
    # (each row also says where it comes from, under the TOML key `from`)


class TrainCosts(TypedDict, total=False):
    step: dict[str, dict[str, StepCost]]  # precision -> "MBxGA" -> cost
    auto: dict[str, str]  # effective batch -> the split the probe picked
    fixed_s: dict[str, float]  # segment -> its seconds besides the steps
    hf_slowdown: dict[str, float]  # micro-batch -> hf backend time over unsloth's


class GenerateCosts(TypedDict):
    fixed_s: float  # per model: load and quantize
    step_s: float  # one decoding step of the batch
    batch: int


class JudgeCosts(TypedDict, total=False):
    local_call_s: float
    local_fixed_s: float
    local_batched_verdict_s: float
    local_batched_from: str
    api_call_s: float
    own_base_call_s: dict[str, float | str]  # stage -> seconds per call, and "from"


class Costs(TypedDict, total=False):
    """measured_h100.toml: what the projection scales (its comments say where each is from)."""

    source: dict[str, str]  # gpu (a gpus.toml key), date, how
    train: TrainCosts
    generate: GenerateCosts
    judge: JudgeCosts
    fixed_s: dict[str, float]  # stages that are not GPU-bound, measured whole


class PaperRow(TypedDict):
    stage: str
    gpu: str
    backend: str
    projected_s: float
    paper_s: float
    paper_over_projected: float


@dataclass(frozen=True)
class Gpu:
    key: str
    name: str
    where: str
    compute_capability: str
    fp16_tflops: float
    bandwidth_gbs: float
    vram_gib: float
    unsloth: bool


@dataclass(frozen=True)
class StageProjection:
    stage: str
    seconds: float
    basis: str  # how the figure was made, in one line
    gpu_s: float = 0.0  # the part of `seconds` that is GPU work (scaled by the ratio)


def _toml(name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files("advisor_repro.hardware").joinpath(name).read_text())


@functools.cache
def gpus() -> dict[str, Gpu]:
    return {k: Gpu(key=k, **v) for k, v in _toml("gpus.toml").items()}


@functools.cache
def measured() -> Costs:
    return cast(Costs, _toml("measured_h100.toml"))


def gpu_named(name: str) -> Gpu:
    table = gpus()
    key = name.upper().removeprefix("TESLA ").removeprefix("NVIDIA ")
    if key not in table:
        raise ConfigError(f"--gpu {name!r} is not in the projection table; use one of "
                          f"{', '.join(table)} (src/advisor_repro/hardware/gpus.toml)")
    return table[key]


def ratio(gpu: Gpu, costs: Costs | None = None) -> float:
    """The GPU's FP16 throughput as a fraction of the GPU the costs were measured on."""
    ref = gpus()[(costs or measured())["source"]["gpu"]]
    return gpu.fp16_tflops / ref.fp16_tflops


def backend_on(cfg: Config, gpu: Gpu) -> str:
    """What preflight would pick: the profile's backend, or hf where Unsloth cannot run."""
    return cfg.model.backend if gpu.unsloth else "hf"


def precision_on(cfg: Config, gpu: Gpu) -> str:
    """What the run computes in there: `auto` is bf16 from sm 8.0 on, else fp16 (preflight's
    rule); an explicit fp32 is projected with the fp16 costs (not measured)."""
    p = cfg.train.precision
    if p == "auto":
        return "bf16" if float(gpu.compute_capability) >= 8.0 else "fp16"
    return "bf16" if p == "bf16" else "fp16"


def _train(cfg: Config, stage: str, gpu: Gpu, costs: Costs) -> StageProjection:
    n = cfg.data.expected_train or 100
    plan = segments.plan_for(cfg, stage, n)
    steps = segments.optimizer_steps(plan, n)
    precision = precision_on(cfg, gpu)
    backend = backend_on(cfg, gpu)
    shape, step, note = _step_cost(costs, plan, precision, backend)
    per_step = step["step_s"]
    slow = ""
    if backend == "hf":
        factor = costs["train"]["hf_slowdown"].get(str(plan.shape.micro_batch), 1.94)
        per_step *= factor
        slow = f" x {factor} (hf backend)"
    measured_on = step.get("gpu", costs["source"]["gpu"])
    r = gpu.fp16_tflops / gpus()[measured_on].fp16_tflops
    fixed = costs["train"]["fixed_s"].get(stage, 60.0)
    gpu_s = steps * per_step / r
    basis = (f"{steps} steps of {shape} x {step['step_s']:.2f} s ({precision}, {measured_on})"
             f"{note}{slow} / {r:.4f} + {fixed:.0f} s load/save")
    return StageProjection(stage, fixed + gpu_s, basis, gpu_s)


def _step_cost(costs: Costs, plan: segments.SegmentPlan, precision: str,
               backend: str) -> tuple[str, StepCost, str]:
    """(shape "MBxGA", its cost per optimizer step, a note for the basis). Under split = "auto"
    the split the probe picked in the measured run ([train.auto]) and its cost; where that
    was measured in the other precision only, its cost scaled by the written split's
    bf16 / fp16 ratio (said in the note). The hf backend keeps the written split's cost
    (auto was measured with Unsloth only)."""
    measured_steps = costs["train"]["step"][precision]
    shape, note = f"{plan.shape.micro_batch}x{plan.shape.grad_accum}", ""
    picked = costs["train"].get("auto", {}).get(str(plan.shape.effective))
    if plan.split == "auto" and picked and backend != "hf":
        written, note = shape, f", split auto (written {shape})"
        shape = picked
        if shape not in measured_steps:
            other = "fp16" if precision == "bf16" else "bf16"
            alt = costs["train"]["step"][other]
            if shape in alt and written in alt and written in measured_steps:
                scale = measured_steps[written]["step_s"] / alt[written]["step_s"]
                step = {**alt[shape], "step_s": alt[shape]["step_s"] * scale}
                return shape, step, note + f", {other} cost x {scale:.3f} ({precision}/{other} " \
                                           f"at {written})"
    elif plan.split == "auto":
        note = ", split auto not measured here: the written split's cost"
    step = measured_steps.get(shape)
    if step is None:  # an unmeasured shape: scale the nearest one by tokens per step
        ref_shape, ref = min(measured_steps.items(), key=lambda kv: abs(
            int(kv[0].split("x")[0]) - plan.shape.micro_batch))
        per_seq = ref["tokens"] / math.prod(int(x) for x in ref_shape.split("x"))
        step = {**ref, "step_s": ref["step_s"] * per_seq * plan.shape.effective / ref["tokens"]}
    return shape, step, note


def _generate(cfg: Config, gpu: Gpu, costs: Costs) -> StageProjection:
    g, r = costs["generate"], ratio(gpu, costs)
    batches = math.ceil(cfg.data.eval_prompts / g["batch"])
    steps = batches * max(cfg.generate.caps)  # greedy, shared prefix: one pass to the top cap
    gpu_s = 2 * steps * g["step_s"] / r
    basis = (f"2 models x ({batches} batch x {max(cfg.generate.caps)} steps x "
             f"{g['step_s']} s (H100) / {r:.4f} + {g['fixed_s']:.0f} s load)")
    return StageProjection("generate", 2 * g["fixed_s"] + gpu_s, basis, gpu_s)



def _judged(cfg: Config, stage: str, work: GpuWork, gpu: Gpu, costs: Costs
            ) -> StageProjection:
    assert work.calls is not None, f"{stage} declares judged work without its calls"
    j, calls, rest_s = costs["judge"], work.calls(cfg), work.rest_s
    own = j.get("own_base_call_s", {})
    if cfg.judge.backend == "local" and not cfg.judge.local_model and stage in own:
        # the profile's own base judges: each stage measured whole at full size, load included
        r = ratio(gpu, costs)
        gpu_s = calls * own[stage] / r
        basis = (f"{calls} local judge calls x {own[stage]} s (the profile's own base as the "
                 f"judge, stage wall-clock per call, {own['from']}) / {r:.4f}")
        return StageProjection(stage, gpu_s, basis, gpu_s)
    if cfg.judge.backend == "local":
        r = ratio(gpu, costs)
        # measured by `repro bench judge` (batched, under the grammar) once it has run on the
        # GPU; until then the one-question-at-a-time estimate
        per, how = ((j["local_batched_verdict_s"], f"batched, {j.get('local_batched_from')}")
                    if "local_batched_verdict_s" in j else (j["local_call_s"], "one at a time"))
        gpu_s = calls * per / r
        basis = (f"{calls} local judge calls x {per} s ({how}) / {r:.4f} "
                 f"+ {j['local_fixed_s']:.0f} s load")
        return StageProjection(stage, rest_s + j["local_fixed_s"] + gpu_s, basis, gpu_s)
    elif cfg.judge.backend == "replay":
        seconds, basis = rest_s, "replayed verdicts: no calls"
    else:
        from advisor_repro.judges import waits

        seconds = rest_s + waits(cfg.judge, calls) * j["api_call_s"]
        basis = (f"{calls} {cfg.judge.backend} API calls, {cfg.judge.concurrency} in flight, "
                 f"x {j['api_call_s']} s (not GPU-bound)")
    return StageProjection(stage, seconds, basis)


def project(cfg: Config, gpu: Gpu, stages: list[Planned],
            costs: Costs | None = None) -> list[StageProjection]:
    """Every stage of `repro all` on `gpu`, in order, by the GPU work each declares; a stage
    with none keeps its measured fixed cost, else its own estimate (preflight, data ...)."""
    costs = costs or measured()
    out = []
    for st in stages:
        work = st.work
        if work and work.kind == "train":
            out.append(_train(cfg, st.name, gpu, costs))
        elif work and work.kind == "generate":
            out.append(_generate(cfg, gpu, costs))
        elif work and work.kind == "judged":
            out.append(_judged(cfg, st.name, work, gpu, costs))
        elif st.name in costs.get("fixed_s", {}):
            out.append(StageProjection(st.name, costs["fixed_s"][st.name], "measured on the "
                                       "H100 (not GPU-bound: hashing, a fresh process, loading)"))
        else:
            out.append(StageProjection(st.name, st.own_s,
                                       "the stage's own estimate (not GPU-bound)"))
    return out


def calibration(cfg: Config, gpu: Gpu, costs: Costs | None = None) -> float | None:
    """paper / projected for the segment the paper ran on this GPU: the factor between what
    the datasheet ratio (and, on the P100, the hf backend's measured slowdown) projects and
    what the GPU sustained in the paper. None on a GPU the paper did not time.

    Fitted on the one segment the paper timed on each GPU (T4: segment 2; P100: segment 1,
    where the paper ran Unsloth 2025.3 and this stack can only run the hf backend), so that
    segment's calibrated projection equals the paper by construction; what remains untested
    is the other segment on that GPU, which takes the factor across a shape (2 x 4 vs 4 x 8)
    the H100 measurements relate."""
    for row in paper_comparison(cfg, costs):
        if row["gpu"] == gpu.key and row["backend"] == backend_on(cfg, gpu):
            return row["paper_over_projected"]
    return None


def paper_comparison(cfg: Config, costs: Costs | None = None
                     ) -> list[PaperRow]:
    """The paper's measured segments against this projection for the GPU each ran on. The
    steps are the paper's whatever `cfg` caps (a rehearsal's 10 steps compare with nothing);
    the backend and precision choices are `cfg`'s."""
    from advisor_repro.config import load_config

    costs = costs or measured()
    t = cfg.train
    # the paper's segments ran at their written split: a profile's split = auto is not theirs
    if any(s.max_steps for s in (t.segment1, t.segment2)) or "auto" in (t.segment1.split,
                                                                         t.segment2.split):
        cfg = load_config("paper", [f"train.precision='{t.precision}'",
                                    f"model.backend='{cfg.model.backend}'",
                                    f"train.segment2.recipe='{t.segment2.recipe}'"])
    rows = []
    for stage, key in PAPER_GPU.items():
        gpu = gpus()[key]
        projected = _train(cfg, stage, gpu, costs).seconds
        paper = segments.PAPER_SECONDS[stage]
        rows.append({"stage": stage, "gpu": key, "backend": backend_on(cfg, gpu),
                     "projected_s": projected, "paper_s": paper,
                     "paper_over_projected": paper / projected})
    return rows
