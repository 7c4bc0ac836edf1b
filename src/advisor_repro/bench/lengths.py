"""`repro bench train --mode lengths`: the written split against `split = "auto"` at the data's
real length distribution, segment 1 and segment 2, in one run.

One worker process loads the profile's base once (the rehearsal: the random-weight 7B shape,
NF4, LoRA r 16) under the VRAM cap, keeps a copy of the fresh LoRA weights, and for each
segment and each split restores them and trains `steps` optimizer steps with this package's
trainer (`trainer.build_trainer`: TRL's SFTTrainer, AdamW 8-bit, the segment's lr and
warm-up) on the same sample of the run's `data/train_text.jsonl` (effective batch x steps
conversations, right padding, the Trainer's seeded order). So both splits see the same
sequences in the same optimizer steps and start from the same weights; segment 2 starts from
a fresh LoRA here (not segment 1's adapter): speed and memory do not depend on the weights.
On a GPU, every split first trains the same number of steps untimed on another sample of the
data (kernel compilation, autotuning, the allocator's pools), so that no split is measured cold
and none on shapes it has already seen: each then meets the measured sequences as a real run
meets new ones; then the same measured run once more ("seen": every shape met before), the
regime a long run tends to as its lengths recur. A split named "K:length:pad64" runs with
train.step_order = "length" and train.pad_to_multiple_of = 64; ":pf" with train.padding_free.

Reported per segment and split: seconds per optimizer step (mean over the steps after the
first, which carries compilation and warm-up), non-padding tokens/s over those steps, peak
reserved and allocated memory of the training (auto's predicted peaks are reported apart), the
padded share at the data's lengths, the per-step losses and grad norms, and on a listed GPU
the model and hardware FLOPs utilisation of the real tokens (hardware/utilisation.py); then
auto / written time per step and the largest per-step loss difference, against the targets.
On the CPU it runs too (the smoke model, the hf backend): auto keeps the split there, so a
test names an explicit micro-batch ("1") to compare instead.

Worker (run by the parent): python -m advisor_repro.bench.lengths SPEC_JSON OUT_JSON
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from advisor_repro.bench import utilisation
from advisor_repro.bench.records import (
    Comparison,
    Device,
    LayerCalibration,
    LayerPair,
    LengthsRecord,
    LengthsRun,
    LengthsSpec,
    StepRow,
    WarmupRun,
)
from advisor_repro.config import Config
from advisor_repro.errors import ConfigError, ResourceError, StageInputError
from advisor_repro.files import read_json, read_jsonl, write_json
from advisor_repro.hardware.gpu import GIB, cap_vram
from advisor_repro.hardware.utilisation import dense_params
from advisor_repro.training import checkpointing
from advisor_repro.training.segments import Shape

if TYPE_CHECKING:
    import torch

SEGMENTS = ("train-1", "train-2")
TARGETS = {"step_ratio_max": 0.6, "loss_diff_max": 1e-3}
WORKER_TIMEOUT_S = 1500


class Variant(NamedTuple):
    """One --splits item."""
    split: str  # "fixed", "auto" or a micro-batch K
    order: str  # train.step_order
    multiple: int  # train.pad_to_multiple_of
    free: bool  # train.padding_free
    layers: int | str | None = None  # checkpointed layers: N, "auto", None = as configured


def parse_name(item: str) -> Variant:
    """One --splits item: "fixed" (the split as written), "auto", or a micro-batch K
    (grad-accum = effective / K), then optionally ":length" (train.step_order = "length"),
    ":padN" (train.pad_to_multiple_of = N), ":pf" (train.padding_free) and ":gcN" (N decoder
    layers checkpointed) or ":gcauto" (train.checkpoint_layers = "auto")."""
    split, *opts = item.split(":")
    order, multiple, free, layers = "sampled", 0, False, None
    ok = split in ("fixed", "auto") or (split.isdigit() and int(split) > 0)
    for opt in opts:
        if opt in ("length", "sampled"):
            order = opt
        elif opt.startswith("pad") and opt[3:].isdigit() and int(opt[3:]) > 0:
            multiple = int(opt[3:])
        elif opt == "pf":
            free = True
        elif opt == "gcauto":
            layers = "auto"
        elif opt.startswith("gc") and opt[2:].isdigit():
            layers = int(opt[2:])
        else:
            ok = False
    if not ok:
        raise ConfigError(f"--splits: {item!r} is not 'fixed', 'auto' or a micro-batch, "
                          "optionally followed by ':length', ':padN', ':pf' and ':gcN' or "
                          "':gcauto'",
                          "write e.g. --splits fixed,auto,auto:pf,auto:pf:gcauto or "
                          "--splits fixed,1")
    return Variant(split, order, multiple, free, layers)


def parse_segments(text: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items or any(x not in SEGMENTS for x in items):
        raise ConfigError(f"--segments {text!r}: name {' and/or '.join(SEGMENTS)}",
                          "write e.g. --segments train-2")
    return items


def parse_splits(text: str) -> list[str]:
    """Comma-separated `parse_name` items, the first the reference."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    for item in items:
        parse_name(item)
    if len(items) < 2:
        raise ConfigError(f"--splits {text!r} names fewer than two splits to compare",
                          "write e.g. --splits fixed,auto")
    return items


@dataclass(frozen=True)
class LengthsOptions:
    """What `repro bench train --mode lengths` was asked to measure."""
    splits: list[str]  # parse_splits items, the first the reference
    steps: int  # optimizer steps per segment and split, the first untimed
    dtype: str  # compute dtype on a GPU, "fp16" or "bf16"
    budget_gib: float  # per-process VRAM cap
    segments: list[str] = field(default_factory=lambda: list(SEGMENTS))
    seen: bool = True  # measure each split once more on the sequences it has met


# ---- the parent --------------------------------------------------------------------------------
def run(cfg: Config, run_dir: Path, out: Path, opts: LengthsOptions,
        say: Any = print) -> LengthsRecord:
    """Check the inputs, run the worker in its own process, write and return the record."""
    splits, steps, budget_gib = opts.splits, opts.steps, opts.budget_gib
    train_text = Path(run_dir) / "data" / "train_text.jsonl"
    if not train_text.is_file():
        raise StageInputError(f"{train_text} is missing: the lengths benchmark trains on the "
                              "run's own data",
                              f"run `repro data --profile {cfg.run.name} --run-dir {run_dir}` "
                              "first, then this command with the same --run-dir")
    if steps < 2:
        raise ConfigError(f"--steps {steps}: the first step carries warm-up, so at least 2 are "
                          "needed to time one", "use --steps 4 (the default)")
    spec: LengthsSpec = {"config": cfg.to_dict(), "train_text": str(train_text),
                         "splits": splits, "steps": steps, "dtype": opts.dtype,
                         "budget_gib": budget_gib, "segments": opts.segments or list(SEGMENTS),
                         "seen": opts.seen}
    spec_file, res_file = out.parent / ".bench-split-spec.json", out.parent / ".bench-split.json"
    write_json(spec_file, spec)
    say(f"bench lengths: {', '.join(spec['segments'])} x splits {', '.join(splits)}, {steps} "
        f"optimizer steps each, cap {budget_gib} GiB, data {train_text.name}")
    cmd = [sys.executable, "-m", "advisor_repro.bench.lengths", str(spec_file),
           str(res_file)]
    proc = subprocess.run(cmd, timeout=WORKER_TIMEOUT_S, check=False)
    spec_file.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise ResourceError(f"bench lengths worker failed (exit {proc.returncode}); its output "
                            "is above", "fix the error shown, then rerun")
    record: LengthsRecord = read_json(res_file)
    res_file.unlink()
    record["comparison"] = compare(record["runs"], splits)
    record["layer_calibration"] = layer_cost(record["runs"])
    utilisation.annotate_lengths(record)
    write_json(out, record)
    return record


def compare(runs: dict[str, dict[str, LengthsRun]], splits: list[str]
            ) -> dict[str, Comparison]:
    """Per segment: every split after the first against the first (the written one)."""
    out: dict[str, Comparison] = {}
    for stage, by_split in runs.items():
        ref = by_split[splits[0]]
        for other in splits[1:]:
            r = by_split[other]
            ratio = (None if not ref["step_s"] or r["step_s"] is None
                     else round(r["step_s"] / ref["step_s"], 3))
            diff = (None if ref.get("oom") or r.get("oom") else
                    max((abs(a - b) for a, b in zip(ref["losses"], r["losses"], strict=True)),
                        default=None))
            seen_ref, seen = ref.get("seen") or {}, r.get("seen") or {}
            ratio_seen = (round(seen["step_s"] / seen_ref["step_s"], 3)
                          if seen.get("step_s") and seen_ref.get("step_s") else None)
            out[f"{stage} {other} vs {splits[0]}"] = {
                "step_ratio": ratio, "step_ratio_seen": ratio_seen, "loss_diff_max": diff,
                "peak_reserved_gib": r["peak_reserved_gib"], "budget_gib": r["budget_gib"],
                "ok": {"step_ratio": None if ratio is None
                       else ratio <= TARGETS["step_ratio_max"],
                       "loss": None if diff is None else diff <= TARGETS["loss_diff_max"],
                       "memory": (None if r["peak_reserved_gib"] is None
                                  else r["peak_reserved_gib"] <= r["budget_gib"])}}
    return out


def layer_cost(runs: dict[str, dict[str, LengthsRun]]) -> LayerCalibration | None:
    """What one layer left un-checkpointed adds to the peak per token of the micro-batch
    (microbatch.CALIBRATIONS' gib_per_layer_token), from runs at micro-batch 1 on the same
    sample, every layer checkpointed against fewer: (peak - peak all) / (layers left out x the
    sample's longest sequence, which is the largest micro-batch at 1). The largest such figure
    (the conservative one); None without such a pair."""
    found: list[LayerPair] = []
    for stage, by_split in runs.items():
        ones = [r for r in by_split.values() if r["micro_batch"] == 1 and not r.get("oom")
                and r.get("peak_reserved_gib") and r.get("checkpointing")]
        full = [r for r in ones if r["checkpointing"]["checkpointed"]
                == r["checkpointing"]["layers"]]
        for ref in full:
            for r in ones:
                gc = r["checkpointing"]
                left_out = gc["layers"] - gc["checkpointed"]
                if left_out and r["sample_longest_tokens"] == ref["sample_longest_tokens"]:
                    cost = ((r["peak_reserved_gib"] - ref["peak_reserved_gib"])
                            / (left_out * r["sample_longest_tokens"]))
                    found.append({"stage": stage, "left_out": left_out,
                                  "tokens": r["sample_longest_tokens"],
                                  "gib_per_layer_token": round(cost, 8)})
    if not found:
        return None
    return {"gib_per_layer_token": max(f["gib_per_layer_token"] for f in found),
            "pairs": found}


def markdown(record: LengthsRecord) -> str:
    """The tables for BENCHMARKS.md."""
    d = record["device"]
    lines = [f"Device: {d['name']}; {record['dtype']} compute, cap {record['budget_gib']} GiB; "
             f"{record['steps']} optimizer steps per run (the first untimed); data: "
             f"{record['data']['conversations']} conversations, mean "
             f"{record['data']['mean_tokens']} tokens, longest {record['data']['longest_tokens']}.",
             "", "| segment | split | s / step, new lengths | s / step, seen | tokens/s | "
             "peak reserved GiB | padded share | losses |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for stage, by_split in record["runs"].items():
        for name in record["splits"]:
            r = by_split[name]
            losses = ", ".join(f"{x:.4f}" for x in r["losses"])
            seen = (r.get("seen") or {}).get("step_s", "-")
            gc = r.get("checkpointing") or {}
            layers = (f", {gc['checkpointed']} of {gc['layers']} layers checkpointed"
                      if gc.get("mode") in ("auto", "explicit") else "")
            lines.append(f"| {stage} | {name}: {r['micro_batch']} x {r['grad_accum']}{layers} | "
                         f"{'out of memory' if r.get('oom') else r['step_s']} | {seen} | "
                         f"{r['tokens_per_s']} | "
                         f"{r['peak_reserved_gib']} | {r['padded_share']} | {losses} |")
    lines += utilisation.lengths_table(record)
    cal = record.get("layer_calibration")
    if cal:
        lines += ["", f"A layer left un-checkpointed adds {cal['gib_per_layer_token']:.6g} GiB "
                  "per token of the micro-batch to the peak reserved (the largest of "
                  + ", ".join(f"{p['stage']} {p['left_out']} layers out at {p['tokens']} tokens"
                              for p in cal["pairs"]) + ")."]
    lines += ["", "| comparison | s / step ratio, new lengths (<= 0.6) | ratio, seen | max loss "
              "diff (<= 1e-3) | peak reserved within cap |", "|---|---:|---:|---:|---|"]
    for name, c in record["comparison"].items():
        ok = c["ok"]
        lines.append(f"| {name} | {c['step_ratio']} ({_yes(ok['step_ratio'])}) | "
                     f"{c.get('step_ratio_seen') or '-'} | {_num(c['loss_diff_max'])} "
                     f"({_yes(ok['loss'])}) | {_yes(ok['memory'])} |")
    return "\n".join(lines) + "\n"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.1e}"


def _yes(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


# ---- the worker --------------------------------------------------------------------------------
@dataclass
class Loaded:
    """What the worker loads once and every run of it trains with."""
    cfg: Config
    spec: LengthsSpec
    model: Any  # the base with its LoRA, restored to `fresh` before each run
    tokenizer: Any
    load: Any  # backends.LoadSpec
    backend: Any  # the backend module
    texts: list[str]  # the run's training conversations
    lengths: list[int]  # their lengths in tokens, as the Trainer sees them


def worker(spec: LengthsSpec) -> LengthsRecord:
    import torch

    from advisor_repro.config import build
    from advisor_repro.training.backends import get_backend

    cfg = build(Config, spec["config"], "bench spec")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    backend = get_backend(cfg.model.backend if device == "cuda" else "hf")
    backend.prepare()  # Unsloth before transformers
    from advisor_repro.models import hub as models
    from advisor_repro.training import microbatch
    from advisor_repro.training.backends import LoadSpec

    dtype = spec["dtype"] if device == "cuda" else "fp32"
    vram = cap_vram(device, spec["budget_gib"]).train_json()
    base_dir, _ = models.base_model(cfg.model)
    load = LoadSpec(base_dir, device, dtype, cfg.train.max_seq_length, cfg.train.lora,
                    cfg.train.gradient_checkpointing,
                    offload_checkpointing=cfg.train.unsloth_checkpointing == "unsloth")
    torch.manual_seed(cfg.train.seed)
    model, tokenizer = backend.load(load)
    fresh = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    texts = [r["text"] for r in read_jsonl(Path(spec["train_text"]))]
    lengths = microbatch.longest_tokens(tokenizer, texts, cfg.train.max_seq_length)
    w = Loaded(cfg, spec, model, tokenizer, load, backend, texts, lengths)
    runs: dict[str, dict[str, LengthsRun]] = {}
    warmup: dict[str, dict[str, WarmupRun]] = {}
    for stage in spec.get("segments", SEGMENTS):
        runs[stage], warmup[stage] = {}, {}
        for split in spec["splits"]:
            if device == "cuda":
                # Untimed, the same run on another sample: the first trainer of a process and
                # new shapes pay for kernel compilation and autotuning (the first split measured
                # cold was 2.6x slower per step than measured warm). On another sample, so the
                # measured run meets unseen lengths, as a real run does.
                _restore(model, fresh)
                untimed = one_run(w, stage, split, warm=True)
                warmup[stage][split] = {"micro_batch": untimed["micro_batch"],
                                        "step_s": untimed["step_s"]}
            _restore(model, fresh)
            runs[stage][split] = one_run(w, stage, split)
            if device == "cuda" and spec.get("seen", True) and not runs[stage][split]["oom"]:
                _restore(model, fresh)
                again = one_run(w, stage, split)
                runs[stage][split]["seen"] = {
                    "step_s": again["step_s"], "tokens_per_s": again["tokens_per_s"],
                    "peak_reserved_gib": again["peak_reserved_gib"], "losses": again["losses"]}
    return {"what": "repro bench train --mode lengths", "device": _device(device),
            "dtype": dtype, "budget_gib": spec["budget_gib"], "vram": vram,
            "params": dense_params(model.config),
            "gradient_checkpointing": load.gradient_checkpointing,
            "steps": spec["steps"], "backend": backend.NAME,
            "data": {"conversations": len(texts), "longest_tokens": max(lengths),
                     "mean_tokens": round(sum(lengths) / len(lengths), 1)},
            "splits": spec["splits"], "runs": runs, "warmup": warmup, "targets": TARGETS,
            "versions": _versions()}


def one_run(w: Loaded, stage: str, name: str, warm: bool = False) -> LengthsRun:
    """`steps` optimizer steps of `stage`'s plan at split `name`; timings, memory and losses.
    `warm`: on the warm-up sample (disjoint from the measured one where the data allows)."""
    import dataclasses
    import tempfile

    import torch
    from datasets import Dataset

    from advisor_repro.training import microbatch, segments
    from advisor_repro.training.records import SegmentRun
    from advisor_repro.training.trainer import build_trainer

    cfg, spec, model, tokenizer = w.cfg, w.spec, w.model, w.tokenizer
    load, backend, texts, lengths = w.load, w.backend, w.texts, w.lengths
    plan = segments.plan_for(cfg, stage)
    plan = dataclasses.replace(plan, max_steps=spec["steps"], from_bundle=False)
    written, effective = plan.shape, plan.shape.effective
    n = effective * spec["steps"]
    pick = sample(len(texts), n, cfg.train.seed, warm)
    split, order, multiple, free, layers_opt = parse_name(name)
    train_cfg = dataclasses.replace(cfg.train, step_order=order, pad_to_multiple_of=multiple,
                                    padding_free=free)
    # the stage decides at the whole data's longest, padded up: so does the bench
    longest = microbatch.rounded(max(lengths), multiple)
    choice = microbatch.fixed()
    if split == "fixed":
        shape = written
    elif split == "auto":
        shape, choice = microbatch.auto(written, load.device, spec["budget_gib"], longest,
                                        microbatch.MemoryKey(backend.NAME, model.config,
                                                             cfg.train.gradient_checkpointing))
    else:
        if effective % int(split):
            raise ConfigError(f"--splits {split}: micro-batch {split} does not divide {stage}'s "
                              f"effective batch {effective}",
                              f"name one of {microbatch.candidates(effective)}")
        shape = Shape(int(split), effective // int(split))
        choice = {"mode": "explicit", "probe": None, "reason": f"--splits {split}"}
    layers = _layers(w, train_cfg, layers_opt, shape, longest)
    keep = (checkpointing.keeper(model, layers["checkpointed"], backend.NAME)
            if layers["checkpointed"] != layers["layers"] else None)
    cuda = load.device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    timer = _timer(cuda)
    data = Dataset.from_list([{"text": texts[i]} for i in pick])
    print(f"[bench {stage}] {name}{' (warm-up, untimed)' if warm else ''}: {shape.micro_batch} "
          f"x {shape.grad_accum}, {layers['checkpointed']} of {layers['layers']} layers "
          f"checkpointed, {spec['steps']} steps of {effective} sequences (data's longest: "
          f"{longest} tokens)", flush=True)
    oom = False
    with tempfile.TemporaryDirectory() as tmp:
        run = SegmentRun(model, tokenizer, plan, train_cfg, load, backend, Path(tmp))
        trainer = build_trainer(run, data, shape, [timer, *([keep] if keep else [])],
                                extra={"save_strategy": "no"})
        try:
            trainer.train()
        except torch.OutOfMemoryError:  # recorded: a setting that does not fit is a result
            oom = True
        del trainer
    if keep:
        keep.restore()
    if oom:
        model.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        print(f"[bench {stage}] {name}: out of memory", flush=True)
    timed = [] if oom else timer.rows[1:]
    seconds = sum(r["seconds"] for r in timed)
    tokens = sum(r["tokens"] for r in timed)
    return {"micro_batch": shape.micro_batch, "grad_accum": shape.grad_accum,
            "effective_batch": effective, "choice": choice, "oom": oom,
            "checkpointing": {**layers, "in_force": sorted(keep.seen) if keep else None},
            "sample_longest_tokens": max(lengths[i] for i in pick), "step_order": order,
            "pad_to_multiple_of": multiple, "padding_free": free,
            "step_s": round(seconds / len(timed), 4) if timed else None,
            "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / GIB, 3) if cuda else None,
            "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / GIB, 3) if cuda
            else None,
            "budget_gib": spec["budget_gib"],
            "padded_share": 0.0 if free else microbatch.padded_share(
                [lengths[i] for i in pick], shape.micro_batch, cfg.train.seed,
                effective if order == "length" else 0, multiple),
            "losses": [r["loss"] for r in timer.rows],
            "grad_norms": [r["grad_norm"] for r in timer.rows],
            "steps": timer.rows}


def _layers(w: Loaded, train: Any, wanted: int | str | None, shape: Shape,
            longest: int) -> checkpointing.Layers:
    """The checkpointed layers of one run: as configured, "auto" (the memory model at this
    run's micro-batch) or an explicit number."""
    import dataclasses

    if isinstance(wanted, int):
        n = len(checkpointing.decoder_layers(w.model))
        return checkpointing.Decision(n, min(wanted, n), None, f"--splits ...:gc{wanted}",
                                      "explicit").to_dict()
    if wanted == "auto":
        train = dataclasses.replace(train, checkpoint_layers="auto")
    tokens = checkpointing.worst_tokens(w.lengths, shape.micro_batch, longest,
                                        train.padding_free)
    return checkpointing.for_model(w.model, train, w.backend.NAME, tokens, w.spec["budget_gib"],
                                   w.load.device)


def sample(n_texts: int, n: int, seed: int, warm: bool) -> list[int]:
    """The measured sample (seeded, sorted) or the warm-up one: drawn from the rest of the data
    where enough is left, else from all of it."""
    measured = sorted(random.Random(seed).sample(range(n_texts), min(n, n_texts)))
    if not warm:
        return measured
    rest = sorted(set(range(n_texts)) - set(measured))
    pool = rest if len(rest) >= n else list(range(n_texts))
    return sorted(random.Random(seed + 1).sample(pool, min(n, len(pool))))


def _restore(model: Any, fresh: dict[str, torch.Tensor]) -> None:
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in fresh:
                p.copy_(fresh[name])
    model.zero_grad(set_to_none=True)


def _timer(cuda: bool) -> Any:
    """A Trainer callback recording per optimizer step: wall seconds (synchronised), loss, grad
    norm, non-padding tokens. Built here: transformers may be imported only after Unsloth."""
    import torch
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.rows: list[StepRow] = []
            self.t0 = self.seconds = 0.0
            self.seen = 0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            self.seconds = time.perf_counter() - self.t0

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None,
                   **kw: Any) -> None:
            if not logs or "loss" not in logs:
                return
            seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
            self.rows.append({"step": state.global_step, "loss": float(logs["loss"]),
                              "grad_norm": float(logs.get("grad_norm") or 0.0),
                              "tokens": seen - self.seen, "seconds": round(self.seconds, 4)})
            self.seen = seen

    return Timer()


def _device(device: str) -> Device:
    if device != "cuda":
        return {"name": "cpu", "capability": None, "total_gib": None}
    import torch

    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "capability": f"{props.major}.{props.minor}",
            "total_gib": round(props.total_memory / GIB, 2)}


def _versions() -> dict[str, str | None]:
    from advisor_repro.manifest import library_versions

    keep = ("torch", "transformers", "trl", "peft", "bitsandbytes", "unsloth")
    return {k: v for k, v in library_versions().items() if k in keep}


def main(argv: list[str]) -> int:
    spec_file, out = argv
    write_json(Path(out), worker(json.loads(Path(spec_file).read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
