"""One training run (segment 1, segment 2 or the control) in its own process:
setup -> train -> cleanup.

Setup: import the backend first (Unsloth must come before transformers), cap the process at
the VRAM budget, resolve the base, for segment 2 verify the handoff bundle against this run's
own config, load the 4-bit base with LoRA. Train: TRL's SFTTrainer with the paper's settings
(`sft_arguments`), resuming from the last complete Trainer checkpoint of this run if a crash
left one, at the written micro-batch x grad-accum or, under `split = "auto"`, the split a
memory model calibrated on this trainer fits into the VRAM budget (`training.microbatch`; same
effective batch), halving the micro-batch (same effective batch) if the first step runs out of
memory.
Cleanup: save the adapter (PEFT + tokenizer, atomically), the held-out loss on the test split
(segment 2 and control), steps.jsonl and summary.json.

Called by `python -m advisor_repro.training.process`; never in the `repro` process itself.
"""

from __future__ import annotations

import gc
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advisor_repro.config import Config, Train
from advisor_repro.errors import ConfigError, ResourceError, SessionLimitReached, Terminated
from advisor_repro.files import read_json, read_jsonl, sha256_file, write_json, write_jsonl
from advisor_repro.hardware.gpu import cap_vram
from advisor_repro.models import hub as models
from advisor_repro.training import checkpointing, microbatch, padding_free, segments
from advisor_repro.training.backends import LoadSpec, count_trainable, get_backend, torch_dtype
from advisor_repro.training.checkpointing import Layers
from advisor_repro.training.checkpoints import checkpoint_step, last_complete_checkpoint
from advisor_repro.training.microbatch import Choice
from advisor_repro.training.records import (
    FitResult,
    FromBundle,
    Heldout,
    Padding,
    SegmentInputs,
    SegmentRun,
    SessionFacts,
    SetupFacts,
    ShapeChange,
    TrainSummary,
)
from advisor_repro.training.segments import SegmentPlan, Shape

SHAPE_FILE = ".shape.json"  # a micro-batch change survives a crash-resume (not an output)
SAVE_MARGIN_S = 120.0  # time kept for saving the adapter before a session limit
LIBS = ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate", "unsloth")


def run(cfg: Config, inputs: SegmentInputs,
        say: Callable[[str], None] = print) -> TrainSummary:
    """Train `inputs.stage` ("train-1", "train-2" or "control") into `inputs.out` from the
    inputs its stage resolved; return the summary."""
    process_start = time.monotonic()
    stage, out = inputs.stage, inputs.out
    decision = read_json(inputs.decision)
    backend = get_backend(backend_name(cfg.model.backend, decision))
    backend.prepare()
    train_text = inputs.train_text
    texts = [r["text"] for r in read_jsonl(train_text)]
    plan = segments.plan_for(cfg, stage, len(texts))
    device, dtype = precision(cfg.train, decision)
    from transformers import set_seed

    set_seed(cfg.train.seed)
    budget = cap_vram(device, cfg.hardware.vram_budget_gib).train_json()
    base_dir, base_revision = models.base_model(cfg.model)
    data_fp = sha256_file(train_text)
    bundle = _bundle(inputs) if plan.from_bundle else None
    handoff = verify_bundle(cfg, bundle, base_revision, data_fp) if bundle else None
    spec = LoadSpec(base_dir, device, dtype, cfg.train.max_seq_length, cfg.train.lora,
                    cfg.train.gradient_checkpointing,
                    bundle,
                    offload_checkpointing=cfg.train.unsloth_checkpointing == "unsloth")
    say(f"[{stage}] {backend.NAME} backend, {device} {dtype}, base {cfg.model.train_base} "
        f"({base_revision}), {len(texts)} training conversations")
    model, tokenizer = backend.load(spec)
    trainable = count_trainable(model)
    check_trainable(trainable, cfg, plan)
    segment = SegmentRun(model, tokenizer, plan, cfg.train, spec, backend, out,
                         cfg.hardware.vram_budget_gib)
    result = fit(segment, texts, process_start, say)
    if result.terminated_at is not None:  # SIGTERM: a checkpoint of the last step, no adapter
        write_jsonl(out / "steps.jsonl", result.rows)
        raise Terminated(
            f"{stage} stopped by SIGTERM after optimizer step {result.terminated_at} of "
            f"{result.max_steps}; checkpoint-{result.terminated_at} is saved in "
            f"{out}/checkpoints",
            "rerun the same command (in a new session): it continues from that step")
    if result.session["stopped_early"] and cfg.train.session_limit_action == "pause":
        write_jsonl(out / "steps.jsonl", result.rows)
        raise SessionLimitReached(
            f"{stage} paused at its {plan.session_limit_hours:g} h session limit after "
            f"{result.global_step} of {result.max_steps} optimizer steps; "
            f"checkpoint-{result.global_step} is saved in {out}/checkpoints",
            "in a new session, rerun the same command: it continues from that step "
            "(train.session_limit_action = 'stop' ends the segment there instead)")
    save_adapter(model, tokenizer, out / "adapter")
    heldout = None
    if plan.heldout:
        if inputs.test_text is None:
            raise ValueError(f"{stage} computes a held-out loss but was given no test text")
        test = [r["text"] for r in read_jsonl(inputs.test_text)]
        heldout = heldout_loss(model, tokenizer, test, spec, result.shape.micro_batch)
        say(f"[{stage}] held-out loss on {heldout['examples']} test conversations: "
            f"{heldout['loss']:.4f}")
    facts = SetupFacts(trainable, base_revision, data_fp, budget, handoff)
    summary = build_summary(cfg, segment, result, facts, heldout,
                            time.monotonic() - process_start)
    write_jsonl(out / "steps.jsonl", result.rows)
    write_json(out / "summary.json", summary.to_json())
    return summary


# ---- setup ---------------------------------------------------------------------------------
def precision(train: Train, decision: dict[str, str]) -> tuple[str, str]:
    """(device, compute dtype): preflight's dtype unless the profile forces one."""
    device = decision["device"]
    dtype = decision["dtype"] if train.precision == "auto" else train.precision
    if device == "cpu" and dtype == "fp16":
        raise ConfigError("train.precision = 'fp16' cannot train on the CPU",
                          "use --set train.precision='auto' (fp32 on CPU) or 'bf16'")
    return device, dtype


def backend_name(wanted: str, decision: dict[str, str]) -> str:
    """The profile's backend, unless preflight found that Unsloth cannot run here (the CPU, a
    GPU below compute capability 7.0) and chose `hf`, with a warning, instead."""
    if wanted == "unsloth" and decision.get("backend") == "hf":
        return "hf"
    return wanted



def _bundle(inputs: SegmentInputs) -> Path:
    if inputs.bundle is None:
        raise ValueError(f"{inputs.stage} starts from the handoff bundle but was given none")
    return inputs.bundle


def verify_bundle(cfg: Config, bundle: Path, base_revision: str, data_fp: str) -> FromBundle:
    """Segment 2's gate: the bundle must match this run's own base, LoRA config, trainable
    count and data, every file by hash (HandoffError names the check that failed)."""
    from advisor_repro.training.handoff import expected_from_config, load_verified_bundle

    expected = expected_from_config(cfg, cfg.model.train_base, base_revision, data_fp)
    facts = load_verified_bundle(bundle, expected)
    return {
        "bundle": f"{bundle.parent.name}/{bundle.name}",  # as the run directory names it
        "handoff_json_sha256": sha256_file(bundle / "handoff.json"),
        "segment1_optimizer_steps": facts["optimizer_steps"],
        "segment1_epochs_done": facts["epochs_done"],
        "segment1_last_loss": facts["last_loss"],
    }


def check_trainable(trainable: int, cfg: Config, plan: SegmentPlan) -> None:
    want = cfg.train.lora.expected_trainable
    if want and trainable != want:
        raise ConfigError(
            f"{plan.stage}: LoRA r {cfg.train.lora.r} on {cfg.model.train_base} gives "
            f"{trainable:,} trainable parameters, the profile expects {want:,}",
            f"check model.train_base and train.lora, or set train.lora.expected_trainable="
            f"{trainable} (0 = no check)",
        )


# ---- train ---------------------------------------------------------------------------------
def sft_arguments(plan: SegmentPlan, shape: Shape, train: Train, device: str, dtype: str,
                  out: Path, backend_kwargs: dict[str, Any]) -> dict[str, Any]:
    """SFTConfig fields: PAPER.md's settings. transformers 5 has no warmup_ratio: a
    warmup_steps below 1 is the ratio (ceil(steps x ratio) steps)."""
    return {
        "output_dir": str(out / "checkpoints"),
        "per_device_train_batch_size": shape.micro_batch,
        "gradient_accumulation_steps": shape.grad_accum,
        "num_train_epochs": plan.epochs,
        "max_steps": plan.trainer_steps(),  # the paper's Trainer's count (segments.py)
        "learning_rate": plan.lr,
        "warmup_steps": plan.warmup_ratio,
        "lr_scheduler_type": train.lr_scheduler,
        "optim": train.optimizer,
        "max_grad_norm": train.max_grad_norm,
        "weight_decay": train.weight_decay,
        "seed": train.seed,
        "fp16": dtype == "fp16",
        "bf16": dtype == "bf16",
        "use_cpu": device == "cpu",
        "packing": train.packing,
        **padding_free.sft_fields(train),  # padding_free, max_length, the token count
        "pad_to_multiple_of": train.pad_to_multiple_of or None,  # 0: to the longest (the paper)
        "dataset_text_field": "text",  # plain text: the loss is on every token
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": train.checkpoint_every,
        "save_total_limit": None,  # steplog.CheckpointRotation keeps the uninterrupted set
        "report_to": train.report_to,  # train.report_to: tokens only from the environment
        "dataloader_num_workers": 0,
        **backend_kwargs,
    }


def fit(segment: SegmentRun, texts: list[str], process_start: float,
        say: Callable[[str], None]) -> FitResult:
    """Train to the plan's end, resuming from a checkpoint of this run if one is there; on an
    out-of-memory first step, halve the micro-batch and try again."""
    import torch
    from datasets import Dataset

    from advisor_repro.training.steplog import (
        CheckpointRotation,
        MemoryProbe,
        SessionGuard,
        StepLog,
        TerminationGuard,
        kept_rows,
    )

    plan, train, out = segment.plan, segment.train, segment.out
    ckpt = last_complete_checkpoint(out / "checkpoints", say)
    start_step = checkpoint_step(ckpt) if ckpt else 0
    lengths = microbatch.longest_tokens(segment.tokenizer, texts, segment.spec.max_seq_length)
    longest = microbatch.rounded(max(lengths), train.pad_to_multiple_of)
    shape, changes, choice, layers = _split(segment, ckpt, (lengths, longest), say)
    keep = (checkpointing.keeper(segment.model, layers["checkpointed"], segment.backend.NAME)
            if layers["mode"] == "auto" else None)
    rows = kept_rows(out / "steps.jsonl", start_step)
    write_jsonl(out / "steps.jsonl", rows)
    if ckpt:
        say(f"[{plan.stage}] resuming from {ckpt.name} (step {start_step}); "
            f"{len(rows)} logged steps kept")
    dataset = Dataset.from_list([{"text": t} for t in texts])
    probe = MemoryProbe(segment.spec.device)
    for row in rows:  # the peak is over the whole run: the steps kept from before a resume too
        for key, value in (row.get("mem") or {}).items():
            probe.peak[key] = max(probe.peak.get(key, 0.0), value)
    limit, action = plan.session_limit_hours, train.session_limit_action
    term = TerminationGuard(say)
    term.install()
    while True:
        guard = SessionGuard(limit, action, process_start, SAVE_MARGIN_S, say)
        callbacks = [StepLog(out / "steps.jsonl", rows, probe, say), guard, term,
                     CheckpointRotation(train.checkpoint_every), *([keep] if keep else [])]
        trainer = build_trainer(segment, dataset, shape, callbacks)
        oom = False
        if ckpt and resumed_at_the_end(trainer, segment.model, ckpt):
            break
        try:
            trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
        except torch.OutOfMemoryError:
            oom = True  # handled below, once the exception no longer pins the tensors
        if not oom:
            break
        shape = _shrink(trainer, segment, shape, start_step, changes, choice, say)
    seconds = rows[-1]["elapsed"] if rows else 0.0
    padding: Padding = {
        "longest_tokens": max(lengths), "mean_tokens": round(sum(lengths) / len(lengths), 1),
        "step_order": train.step_order,
        "padded_share": microbatch.padding_figures(lengths, shape.effective, train.seed,
                                                   train.step_order, train.pad_to_multiple_of),
        "pad_to_multiple_of": train.pad_to_multiple_of,
        "padding_free": train.padding_free}  # then no micro-batch pads at all
    return FitResult(
        rows=rows, shape=shape, changes=changes, resumed_from=ckpt and ckpt.name,
        choice=choice, padding=padding, terminated_at=term.stopped_at,
        checkpointing={**layers, "in_force": sorted(keep.seen) if keep else None},
        backend=segment.backend.NAME,
        global_step=trainer.state.global_step, epoch=float(trainer.state.epoch or 0),
        max_steps=trainer.state.max_steps, train_seconds=seconds,
        warmup_steps=trainer.args.get_warmup_steps(trainer.state.max_steps),
        memory_peak=probe.peak, session=_session_facts(guard, plan, train))


def _split(segment: SegmentRun, ckpt: Path | None, lengths: tuple[list[int], int],
           say: Callable[[str], None]) -> tuple[Shape, list[ShapeChange], Choice, Layers]:
    """(shape, changes, choice, layers): a resumed run keeps the split it started with (the
    checkpoint's data position counts its micro-batches); a new one takes the written split, or
    under split = "auto" the memory model's choice, saved for a resume. `lengths`: every
    conversation's training length and the longest as the run pads it. `layers`: the decoder
    layers checkpointed (train.checkpoint_layers = "auto" decides at the split chosen; the
    shape file keeps them as the choice's "checkpointing")."""
    plan, shape_file = segment.plan, segment.out / SHAPE_FILE
    if ckpt and shape_file.is_file():
        saved = read_json(shape_file)
        shape, choice = Shape(**saved["shape"]), saved.get("choice") or microbatch.fixed()
        computed = _layers(segment, shape, lengths, say)  # the saved choice's, where it has one
        return shape, saved["changes"], choice, choice.pop("checkpointing", computed)
    if plan.split == "auto":
        key = microbatch.MemoryKey(segment.backend.NAME, segment.model.config,
                                   segment.train.gradient_checkpointing)
        shape, choice = microbatch.auto(plan.shape, segment.spec.device, segment.budget_gib,
                                        lengths[1], key, lambda m: say(f"[{plan.stage}] {m}"))
    else:
        shape, choice = plan.shape, microbatch.fixed()
    layers = _layers(segment, shape, lengths, lambda m: say(f"[{plan.stage}] {m}"))
    if plan.split == "auto" or layers["mode"] == "auto":
        write_json(shape_file, {"shape": {"micro_batch": shape.micro_batch,
                                          "grad_accum": shape.grad_accum},
                                "changes": [], "choice": {**choice, "checkpointing": layers}})
    return shape, [], choice, layers


def _layers(segment: SegmentRun, shape: Shape, lengths: tuple[list[int], int],
            say: Callable[[str], None]) -> Layers:
    """Which decoder layers this run checkpoints (training/checkpointing.py)."""
    tokens = checkpointing.worst_tokens(lengths[0], shape.micro_batch, lengths[1],
                                        segment.train.padding_free)
    layers = checkpointing.for_model(segment.model, segment.train, segment.backend.NAME, tokens,
                                     segment.budget_gib, segment.spec.device)
    if layers["mode"] == "auto":
        say(f"checkpointing auto: {layers['checkpointed']} of {layers['layers']} layers; "
            f"{layers['reason']}")
    return layers


def build_trainer(segment: SegmentRun, dataset: Any, shape: Shape, callbacks: list,
                  extra: dict[str, Any] | None = None) -> Any:
    """TRL's SFTTrainer with `sft_arguments`; `extra` (the benchmark: no checkpoints) on top."""
    from trl import SFTConfig, SFTTrainer

    train, spec = segment.train, segment.spec
    kwargs = sft_arguments(segment.plan, shape, train, spec.device, spec.dtype, segment.out,
                           segment.backend.trainer_kwargs(spec))
    args = SFTConfig(**{**kwargs, **(extra or {})})
    cls = _length_ordered(SFTTrainer, shape.effective) if train.step_order == "length" \
        else SFTTrainer
    trainer = cls(model=segment.model, args=args, train_dataset=dataset,
                  processing_class=segment.tokenizer, callbacks=callbacks)
    if train.padding_free:  # TRL did not truncate: refuse what the padded run would cut
        padding_free.check_lengths(trainer.train_dataset["input_ids"], train.max_seq_length)
    keep_adapter_fp32(segment.model)
    return trainer


def _length_ordered(cls: type, effective: int) -> type:
    """`cls` with `train.step_order = "length"`: its training sampler is microbatch.StepOrder
    over the sampler the Trainer would have used, as accelerate would have prepared it (it turns
    a RandomSampler into its seeded one, but does not look inside a wrapper): the same
    sequences in every optimizer step as "sampled", sorted longest first within the step."""
    from accelerate.data_loader import SeedableRandomSampler
    from torch.utils.data import RandomSampler

    class LengthOrdered(cls):  # type: ignore[misc, valid-type]
        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            data = self.train_dataset if train_dataset is None else train_dataset
            base = super()._get_train_sampler(train_dataset)
            if base is None:
                return None
            acc = self.accelerator
            if isinstance(base, RandomSampler) and acc.use_seedable_sampler:
                base = SeedableRandomSampler(
                    data_source=base.data_source, replacement=base.replacement,
                    num_samples=base._num_samples, generator=base.generator,
                    data_seed=acc.dataloader_config.data_seed)
            lengths = [len(ids) for ids in data["input_ids"]]
            return microbatch.StepOrder(base, lengths, effective)

    return LengthOrdered


def keep_adapter_fp32(model: Any) -> None:
    """TRL casts a quantized model's trainable (LoRA) weights to bf16; Unsloth's patched
    trainer removes that cast (it breaks fp16's GradScaler, and a CPU has no fast bf16). The
    hf backend undoes it here, before the optimizer exists, so both train fp32 adapters."""
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()


def _shrink(trainer: Any, segment: SegmentRun, shape: Shape, start_step: int,
            changes: list[ShapeChange], choice: Choice, say: Callable[[str], None]) -> Shape:
    """After an out-of-memory error: the next shape down, or a ResourceError."""
    import torch

    plan = segment.plan
    step = trainer.state.global_step
    if step > start_step:
        raise ResourceError(
            f"{plan.stage}: out of memory at step {step + 1}, after {step - start_step} steps "
            f"had fit (micro-batch {shape.micro_batch})",
            "lower train.max_seq_length or the micro-batch, or raise hardware.vram_budget_gib",
        )
    smaller = segments.halve(shape)
    if smaller is None:
        raise ResourceError(f"{plan.stage}: out of memory at micro-batch 1",
                            "lower train.max_seq_length, or use the unsloth backend")
    changes.append({"from": [shape.micro_batch, shape.grad_accum],
                    "to": [smaller.micro_batch, smaller.grad_accum],
                    "reason": f"out of memory at step {step + 1}"})
    say(f"[{plan.stage}] out of memory at micro-batch {shape.micro_batch}: retrying at "
        f"{smaller.micro_batch} x {smaller.grad_accum} (effective batch {smaller.effective})")
    write_json(segment.out / SHAPE_FILE, {"shape": {"micro_batch": smaller.micro_batch,
                                                "grad_accum": smaller.grad_accum},
                                      "changes": changes, "choice": choice})
    del trainer
    segment.model.zero_grad(set_to_none=True)
    gc.collect()
    torch.cuda.empty_cache()
    return smaller


def _session_facts(guard: Any, plan: SegmentPlan, train: Train) -> SessionFacts:
    projected = guard.projected_s
    return {"limit_hours": plan.session_limit_hours or None,
            "action": train.session_limit_action,
            "projected_hours": None if projected is None else round(projected / 3600, 4),
            "stopped_early": guard.stopped, "warning": guard.warning}


# ---- checkpoints ---------------------------------------------------------------------------
def resumed_at_the_end(trainer: Any, model: Any, ckpt: Path) -> bool:
    """A checkpoint of the segment's last step (a kill after it, before the stage's record):
    load its adapter weights and trainer state and train nothing. Trainer.train resumed
    there would run one optimizer step past max_steps (transformers 5 checks the limit only
    after a step), changing the adapter and every result after it."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import TrainerState

    state = TrainerState.load_from_json(str(ckpt / "trainer_state.json"))
    if not state.max_steps or state.global_step < state.max_steps:
        return False
    set_peft_model_state_dict(model, load_file(str(ckpt / "adapter_model.safetensors")))
    trainer.state = state
    return True


# ---- cleanup -------------------------------------------------------------------------------
def save_adapter(model: Any, tokenizer: Any, dest: Path) -> None:
    """PEFT adapter + tokenizer, written beside `dest` and renamed into place whole."""
    tmp = dest.parent / f".{dest.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def heldout_loss(model: Any, tokenizer: Any, texts: list[str], spec: LoadSpec,
                 batch: int) -> Heldout:
    """Token-weighted mean cross-entropy on the test split's training-format text, tokenized
    as for training (BOS + text + EOS, truncated to max_seq_length)."""
    import contextlib

    import torch

    eos = tokenizer.eos_token or ""
    texts = [t if t.endswith(eos) else t + eos for t in texts]
    device = next(p.device for p in model.parameters())
    amp = (torch.autocast("cuda", dtype=torch_dtype(spec.dtype))
           if spec.device == "cuda" and spec.dtype != "fp32" else contextlib.nullcontext())
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad(), amp:
        for i in range(0, len(texts), batch):
            enc = tokenizer(texts[i:i + batch], truncation=True, max_length=spec.max_seq_length,
                            padding=True, return_tensors="pt").to(device)
            labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
            n = int((labels[:, 1:] != -100).sum())  # tokens that have a next-token target
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                        labels=labels)
            total += float(out.loss) * n
            count += n
    model.train()
    return {"loss": total / max(count, 1), "tokens": count, "examples": len(texts)}


def build_summary(cfg: Config, segment: SegmentRun, result: FitResult, facts: SetupFacts,
                  heldout: Heldout | None, process_seconds: float) -> TrainSummary:
    from advisor_repro.manifest import library_versions
    from advisor_repro.training.handoff import lora_from_config

    plan, spec = segment.plan, segment.spec
    rows, shape = result.rows, result.shape
    tokens = sum(r["tokens"] for r in rows)
    seconds = result.train_seconds
    return TrainSummary(
        stage=plan.stage, segment=plan.segment, backend=result.backend,
        backend_requested=cfg.model.backend,
        base_model=cfg.model.train_base, base_revision=facts.base_revision,
        base_folder=str(spec.base_dir), device=spec.device, dtype=spec.dtype,
        lora=lora_from_config(cfg.train.lora), lora_random_state=cfg.train.lora.random_state,
        trainable_params=facts.trainable, data_fingerprint=facts.data_fingerprint,
        plan=plan.to_dict(),
        shape={"micro_batch": shape.micro_batch, "grad_accum": shape.grad_accum,
               "effective": shape.effective},
        shape_changes=result.changes,
        micro_batch=shape.micro_batch, grad_accum=shape.grad_accum,
        effective_batch=shape.effective, micro_batch_choice=result.choice,
        padding=result.padding, checkpointing=result.checkpointing,
        warmup_steps=result.warmup_steps,
        optimizer=f"fresh {cfg.train.optimizer}, {cfg.train.lr_scheduler} schedule from "
                  f"warmup (nothing carried from another run)",
        started_from=facts.handoff or {"lora": "fresh",
                                       "random_state": cfg.train.lora.random_state},
        resumed_from=result.resumed_from,
        optimizer_steps=result.global_step, max_steps=result.max_steps,
        epochs_done=round(result.epoch, 4),
        **segments.summarize(rows), last_loss=rows[-1]["loss"] if rows else None,
        tokens=tokens, train_seconds=round(seconds, 2),
        tokens_per_s=round(tokens / seconds, 2) if seconds else None,
        process_seconds=round(process_seconds, 2),
        memory_peak=result.memory_peak, vram=facts.vram,
        session=result.session, heldout=heldout,
        warnings=_warnings(result, plan) + (
            [f"model.backend is {cfg.model.backend}, but preflight found it cannot run here: "
             f"trained with the {result.backend} backend"]
            if result.backend != cfg.model.backend else []),
        versions={k: v for k, v in library_versions().items() if k in LIBS},
    )


def _warnings(result: FitResult, plan: SegmentPlan) -> list[str]:
    session = result.session
    out = [session["warning"]] if session["warning"] else []
    if session["stopped_early"]:
        out.append(f"stopped at the session limit ({plan.session_limit_hours:g} h) after "
                   f"{result.global_step} of {result.max_steps} optimizer steps; "
                   "the adapter of that step is saved")
    out += [f"micro-batch changed {c['from']} -> {c['to']} (same effective batch): "
            f"{c['reason']}" for c in result.changes]
    return out
