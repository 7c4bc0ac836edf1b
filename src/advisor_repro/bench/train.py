"""`repro bench train`: speed and memory of the training paths on the real 7B shape, on a GPU.

One run measures, on a randomly initialised model of the exact Mistral-7B-Instruct-v0.3
architecture (the rehearsal base: created once on the GPU, saved as fp16 safetensors, then
quantized to NF4 while loading, as a hub base would be), at seq 2048 and micro-batch 2 and 4
(the shapes of segment 1 and segment 2), with every process capped at the VRAM budget:

  (a) package   this package's trainer: the unsloth backend + trainer.build_trainer (TRL's
                SFTTrainer, AdamW 8-bit, linear warmup schedule, max_grad_norm 0.3)
  (b) unsloth   a bare training loop over the same Unsloth model, the same settings
  (c) hf        the same bare loop over transformers + PEFT + bitsandbytes, no Unsloth

Each path runs in its own process: Unsloth patches transformers when imported, so (c) must
never share a process with it, and each cap and peak is the path's own. Random token ids fill
every sequence (no padding); gradient accumulation is 1, so a step is one micro-batch.
Reported: tokens/s over the timed steps (after warm-up), peak allocated and reserved (torch)
and NVML used, model and hardware FLOPs utilisation against the GPU's dense FP16/BF16 peak
(hardware/utilisation.py; every path checkpoints, so HFU = 1.5 x MFU), and the ratios (a)/(b)
and (a)/(c) against the targets.

Worker (run by the parent): python -m advisor_repro.bench.train PATH BASE SPEC_JSON OUT_JSON
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor_repro.bench import utilisation
from advisor_repro.bench.records import (
    PathResult,
    Ratio,
    ShapeRow,
    TrainRecord,
    TrainSettings,
    TrainSpec,
)
from advisor_repro.config import Config
from advisor_repro.errors import OfflineError, PreflightError, ResourceError
from advisor_repro.files import read_json, write_json
from advisor_repro.hardware.gpu import GIB, cap_vram
from advisor_repro.hardware.utilisation import dense_params, percent

PATHS = {"a": "package", "b": "unsloth", "c": "hf"}
TARGETS = {"a/b": 0.97, "a/c": 3.0}
RESERVED_TARGET_GIB = {2: 6.0, 4: 7.0}  # peak reserved at micro-batch 2 and 4
WORKER_TIMEOUT_S = 900


@dataclass(frozen=True)
class TrainOptions:
    """What `repro bench train` was asked to measure."""
    paths: list[str]  # keys of PATHS
    micro_batches: list[int]  # segment 1's and segment 2's
    steps: int  # timed steps per shape
    warmup: int  # untimed steps before them
    dtype: str  # compute dtype, "fp16" or "bf16"
    budget_gib: float  # per-process VRAM cap


# ---- the parent --------------------------------------------------------------------------------
def run(cfg: Config, out: Path, opts: TrainOptions, say: Any = print) -> TrainRecord:
    """Create the random base if needed, run each path in its own process, write `out`."""
    from advisor_repro.models.cache import cache_root
    from advisor_repro.models.rehearsal import random_base_dir

    _need_gpu()
    micro_batches, budget_gib, warmup = opts.micro_batches, opts.budget_gib, opts.warmup
    settings: TrainSettings = {
        "micro_batches": micro_batches, "steps": opts.steps, "warmup": warmup,
        "dtype": opts.dtype, "budget_gib": budget_gib, "seq": cfg.train.max_seq_length,
        "unsloth_checkpointing": cfg.train.unsloth_checkpointing}
    spec: TrainSpec = {**settings, "config": cfg.to_dict()}
    t0 = time.monotonic()
    try:
        base = random_base_dir(cache_root(), "full")
    except OfflineError:  # not created yet: create it in a process of its own (14.5 GB of GPU)
        say("creating the random-weight Mistral-7B-shape base (once) ...")
        _subprocess(["base"], say)
        base = random_base_dir(cache_root(), "full")
    base_seconds = time.monotonic() - t0
    results: dict[str, PathResult] = {}
    for key in opts.paths:
        say(f"bench ({key}) {PATHS[key]}: micro-batch {', '.join(map(str, micro_batches))}, "
            f"{warmup} warm-up + {opts.steps} timed steps, seq {spec['seq']}, "
            f"cap {budget_gib} GiB")
        spec_file = out.parent / f".bench-{key}-spec.json"
        res_file = out.parent / f".bench-{key}.json"
        write_json(spec_file, spec)
        _subprocess([key, str(base), str(spec_file), str(res_file)], say)
        results[PATHS[key]] = read_json(res_file)
        res_file.unlink()
        spec_file.unlink()
    record: TrainRecord = {
        "what": "repro bench train", "base": str(base), "base_seconds": round(base_seconds, 1),
        "settings": settings, "results": results, "ratios": ratios(results, micro_batches),
        "reserved_targets_gib": RESERVED_TARGET_GIB, "ratio_targets": TARGETS}
    utilisation.annotate_paths(record)
    write_json(out, record)
    return record


def _need_gpu() -> None:
    import torch

    if not torch.cuda.is_available():
        raise PreflightError("`repro bench train` measures GPU training and no CUDA GPU is "
                             "visible", "run it on the GPU machine (nox -s bench)")


def _subprocess(args: list[str], say: Any) -> None:
    cmd = [sys.executable, "-m", "advisor_repro.bench.train", *args]
    proc = subprocess.run(cmd, timeout=WORKER_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise ResourceError(f"bench worker {' '.join(args[:1])} failed (exit {proc.returncode}); "
                            "its output is above", "fix the error shown, then rerun")


def ratios(results: dict[str, PathResult], micro_batches: list[int]) -> dict[str, Ratio]:
    """tokens/s of (a) over (b) and over (c) per micro-batch; None where one side is missing
    or ran out of memory."""
    out: dict[str, Ratio] = {}
    for mb in micro_batches:
        a = _tps(results, "package", mb)
        for name, other in (("a/b", "unsloth"), ("a/c", "hf")):
            b = _tps(results, other, mb)
            value = None if a is None or b is None else round(a / b, 3)
            out[f"{name} mb{mb}"] = {"value": value, "target": TARGETS[name],
                                     "ok": None if value is None else value >= TARGETS[name]}
    return out


def _tps(results: dict[str, PathResult], path: str, mb: int) -> float | None:
    row = (results.get(path) or {}).get("shapes", {}).get(str(mb))
    return None if not row or row.get("oom") else row["tokens_per_s"]


def markdown(record: TrainRecord) -> str:
    """The table for BENCHMARKS.md."""
    s = record["settings"]
    hw = next(iter(record["results"].values()), {}).get("device", {})
    lines = [f"GPU: {hw.get('name')} (capability {hw.get('capability')}, {hw.get('total_gib')} "
             f"GiB), capped at {s['budget_gib']} GiB per process; {s['dtype']} compute; seq "
             f"{s['seq']}; {s['warmup']} warm-up + {s['steps']} timed steps; random-init "
             "Mistral-7B-Instruct-v0.3 shape, NF4 double quant, LoRA r 16 on 7 modules.", "",
             "| path | micro-batch | tokens/s | peak allocated GiB | peak reserved GiB | "
             "NVML used GiB | MFU | HFU |", "|---|---|---|---|---|---|---|---|"]
    for key, name in PATHS.items():
        for mb, row in sorted((record["results"].get(name) or {}).get("shapes", {}).items()):
            tps = "out of memory" if row.get("oom") else f"{row['tokens_per_s']:,.0f}"
            u = row.get("utilisation") or {}
            lines.append(f"| ({key}) {name} | {mb} | {tps} | {row.get('peak_allocated_gib')} | "
                         f"{row.get('peak_reserved_gib')} | {row.get('nvml_used_gib')} | "
                         f"{percent(u.get('mfu'))} | {percent(u.get('hfu'))} |")
    lines += utilisation.paths_note(record)
    lines += ["", "| ratio | value | target | met |", "|---|---|---|---|"]
    for name, r in record["ratios"].items():
        met = "n/a" if r["ok"] is None else ("yes" if r["ok"] else "no")
        lines.append(f"| {name} | {r['value']} | >= {r['target']} | {met} |")
    return "\n".join(lines) + "\n"


# ---- the workers -------------------------------------------------------------------------------
def worker(path: str, base: Path, spec: TrainSpec) -> PathResult:
    from advisor_repro.config import build
    from advisor_repro.training.backends import get_backend

    cfg = build(Config, spec["config"], "bench spec")
    backend = get_backend("hf" if path == "c" else "unsloth")
    backend.prepare()  # Unsloth first, before transformers, for (a) and (b)
    import torch

    from advisor_repro.training.backends import LoadSpec, count_trainable

    torch.manual_seed(cfg.train.seed)
    vram = cap_vram("cuda", spec["budget_gib"]).train_json()
    load = LoadSpec(base, "cuda", spec["dtype"], spec["seq"], cfg.train.lora, True,
                    offload_checkpointing=cfg.train.unsloth_checkpointing == "unsloth")
    t0 = time.monotonic()
    model, tokenizer = backend.load(load)
    load_seconds = time.monotonic() - t0
    shapes: dict[str, ShapeRow] = {}
    for mb in spec["micro_batches"]:
        shapes[str(mb)] = measure(path, model, tokenizer, cfg, load, mb, spec)
    props = torch.cuda.get_device_properties(0)
    return {"path": PATHS[path], "backend": backend.NAME, "trainable": count_trainable(model),
            "params": dense_params(model.config),
            "load_seconds": round(load_seconds, 1), "vram": vram, "shapes": shapes,
            "device": {"name": props.name, "capability": f"{props.major}.{props.minor}",
                       "total_gib": round(props.total_memory / GIB, 2)},
            "versions": _versions()}


def measure(path: str, model: Any, tokenizer: Any, cfg: Config, load: Any, mb: int,
            spec: TrainSpec) -> ShapeRow:
    """Warm-up then timed steps at micro-batch `mb`; an out-of-memory error is a result."""
    import gc

    import torch

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    oom = False
    try:
        steps = package_steps if path == "a" else bare_steps
        times = steps(model, tokenizer, cfg, load, mb, spec)
    except torch.OutOfMemoryError:
        oom = True
    peak = {"peak_allocated_gib": round(torch.cuda.max_memory_allocated() / GIB, 3),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / GIB, 3),
            "nvml_used_gib": _nvml_used_gib()}
    model.zero_grad(set_to_none=True)
    gc.collect()
    torch.cuda.empty_cache()
    if oom:
        return {"oom": True, **peak}
    timed = times[spec["warmup"]:]
    tokens = mb * spec["seq"] * len(timed)
    return {"oom": False, "tokens_per_s": round(tokens / sum(timed), 1),
            "step_seconds": [round(t, 4) for t in timed], **peak}


def package_steps(model: Any, tokenizer: Any, cfg: Config, load: Any, mb: int,
                  spec: TrainSpec) -> list[float]:
    """(a): the package's own trainer construction, timed per optimizer step."""
    import tempfile

    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from advisor_repro.training.backends import unsloth
    from advisor_repro.training.records import SegmentRun
    from advisor_repro.training.segments import SegmentPlan, Shape
    from advisor_repro.training.trainer import build_trainer

    total = spec["warmup"] + spec["steps"]
    ids = _random_ids(mb * total, spec["seq"], cfg)
    data = Dataset.from_dict({"input_ids": ids.tolist()})
    s1 = cfg.train.segment1
    plan = SegmentPlan("bench", 0, 1, Shape(mb, 1), s1.lr, s1.warmup_ratio, total, 0.0,
                       False, False)
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)

    with tempfile.TemporaryDirectory() as tmp:
        run = SegmentRun(model, tokenizer, plan, cfg.train, load, unsloth, Path(tmp))
        trainer = build_trainer(run, data, Shape(mb, 1), [Timer()], extra={"save_strategy": "no"})
        trainer.train()
    return times


def bare_steps(model: Any, tokenizer: Any, cfg: Config, load: Any, mb: int,
               spec: TrainSpec) -> list[float]:
    """(b) and (c): the same settings in a plain loop (autocast, GradScaler for fp16, AdamW
    8-bit, clip 0.3, linear warmup schedule)."""
    import bitsandbytes as bnb
    import torch
    from transformers import get_linear_schedule_with_warmup

    from advisor_repro.training.backends import torch_dtype

    total = spec["warmup"] + spec["steps"]
    s1, t = cfg.train.segment1, cfg.train
    params = [p for p in model.parameters() if p.requires_grad]
    opt = bnb.optim.AdamW8bit(params, lr=s1.lr, weight_decay=t.weight_decay)
    sched = get_linear_schedule_with_warmup(opt, math.ceil(total * s1.warmup_ratio), total)
    scaler = torch.amp.GradScaler("cuda", enabled=spec["dtype"] == "fp16")
    ids = _random_ids(mb * total, spec["seq"], cfg).view(total, mb, spec["seq"])
    dt = torch_dtype(spec["dtype"])
    model.train()
    times = []
    for step in range(total):
        x = ids[step].cuda()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=dt, enabled=spec["dtype"] != "fp32"):
            loss = model(input_ids=x, labels=x).loss
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, t.max_grad_norm)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        sched.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def _random_ids(n: int, seq: int, cfg: Config) -> Any:
    import torch

    from advisor_repro.models.rehearsal import mistral_config

    g = torch.Generator().manual_seed(cfg.train.seed)
    return torch.randint(3, mistral_config("full").vocab_size, (n, seq), generator=g)


def _nvml_used_gib() -> float | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        return round(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0)).used
                     / GIB, 3)
    except Exception:  # no NVML here: torch's figures stand alone
        return None


def _versions() -> dict[str, str | None]:
    from advisor_repro.manifest import library_versions

    keep = ("torch", "transformers", "trl", "peft", "bitsandbytes", "unsloth", "unsloth_zoo")
    return {k: v for k, v in library_versions().items() if k in keep}


def main(argv: list[str]) -> int:
    if argv[:1] == ["base"]:
        from advisor_repro.models.cache import cache_root
        from advisor_repro.models.rehearsal import random_base_dir

        print(f"random base: {random_base_dir(cache_root(), 'full', create=True)}", flush=True)
        return 0
    path, base, spec_file, out = argv
    result = worker(path, Path(base), json.loads(Path(spec_file).read_text(encoding="utf-8")))
    write_json(Path(out), result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
