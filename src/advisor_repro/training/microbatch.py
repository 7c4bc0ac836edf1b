"""How a run's effective batch is split into micro-batch x grad-accum (`train.*.split`).

The paper's math depends on the effective batch (sequences per optimizer step), not on its
split: the Trainer normalises the loss by the label tokens of the whole optimizer step
(transformers' num_items_in_batch), so k x m and (k*m) x 1 are the same gradient
(tests/training/test_split_equality.py shows it on the CPU). A larger micro-batch runs the GPU
better at the data's real lengths; `split = "auto"` takes the largest divisor of the effective
batch that fits the VRAM budget.

How "fits" is decided: a memory model calibrated from this trainer's own measured peaks, not a
probe. Peak reserved memory of a training step grows with the tokens of one micro-batch
(micro-batch x its longest sequence, right padding): reserved ~ base + per_token x tokens. The
calibration (CALIBRATIONS) is keyed on the backend and the model's shape and was measured on
the trainer itself (the H200 capped at 14.74 GiB, fp16; bf16 has the same bytes): for the
Mistral-7B shape under Unsloth with gradient checkpointing it predicts the measured peaks
within 0.3 GiB from 2 x 1,057 to 16 x 1,057 and 4 x 2,048 tokens. For the candidate
micro-batches from the largest down, the first whose predicted peak (x SAFETY) stays
`HEADROOM_GIB` under the budget at the longest sequence the data will produce wins. An
uncalibrated backend or model shape keeps the split as written, and says so. An out-of-memory
first step still halves the micro-batch (trainer._shrink).

Why not a probe: one forward + backward of the loaded model outside the Trainer (tried on the
H200) reserved 11.8 GiB at 2 x 1,057 tokens and ran out of memory at 4 x 1,057, where the
Trainer's own steps reserve 5.5 and 6.4 GiB: the probe does not run the step the Trainer runs,
so it chose micro-batches smaller than the written ones.

On the CPU there is no VRAM to measure: auto keeps the split as written, and says so.

Also here: the padded share of a split at the data's lengths (pure), recorded with the choice.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from advisor_repro.training.segments import Shape

# Kept free beyond the probe's peak: the 8-bit AdamW state of the LoRA weights (2 bytes a
# parameter: 84 MB for the 7B's 41.9 M) and allocator fragmentation over varying lengths.
HEADROOM_GIB = 0.5
CPU_REASON = ("no VRAM to measure on the CPU: the split is kept as written "
              "(auto re-divides the effective batch only on a GPU)")


class ProbeRun(TypedDict):
    """One candidate micro-batch's measured (or, `predicted`, modelled) peak."""

    micro_batch: int
    oom: bool
    peak_reserved_gib: float
    predicted: NotRequired[bool]


class CalibrationSource(TypedDict):
    base_gib: float
    gib_per_token: float
    source: str


class ProbeRecord(TypedDict):
    length: int  # the longest sequence, tokens
    budget_gib: float
    headroom_gib: float
    runs: list[ProbeRun]
    calibration: NotRequired[CalibrationSource]
    safety: NotRequired[float]


class Choice(TypedDict):
    """How the split in force was chosen (summary.json's micro_batch_choice)."""

    mode: str  # "fixed", "auto" or "explicit" (the benchmark's --splits N)
    probe: ProbeRecord | None
    reason: str


class Calibration(TypedDict):
    """A memory model measured on this trainer, keyed on backend and model shape."""

    backend: str
    shape: dict[str, int]  # model config fields that must match
    gradient_checkpointing: bool
    base_gib: float
    gib_per_token: float
    gib_per_layer_token: NotRequired[float]  # train.checkpoint_layers = "auto"
    source: str


def candidates(effective: int) -> list[int]:
    """Micro-batches that divide the effective batch exactly, largest first: 8 -> 8, 4, 2, 1."""
    return [m for m in range(effective, 0, -1) if effective % m == 0]


def rounded(length: int, multiple: int) -> int:
    """`length` padded up to a multiple of `multiple` (0 or 1: unchanged)."""
    return length if multiple <= 1 else -(-length // multiple) * multiple


def padded_share(lengths: list[int], micro_batch: int, seed: int = 42,
                 effective: int = 0, multiple: int = 0) -> float:
    """The share of padding tokens in the micro-batches of one epoch, each padded on the right
    to its longest sequence, in a seeded random order (the Trainer shuffles too; the share is a
    property of the lengths and the micro-batch size, not of one order). `effective` > 0: with
    `train.step_order = "length"`, each optimizer step's `effective` sequences sorted longest
    first before they are cut into micro-batches. `multiple`: each micro-batch padded up to a
    multiple of it (train.pad_to_multiple_of)."""
    order = list(lengths)
    random.Random(seed).shuffle(order)
    if effective:
        order = [order[i] for i in step_sorted(list(range(len(order))), order, effective)]
    real = padded = 0
    for i in range(0, len(order), micro_batch):
        chunk = order[i:i + micro_batch]
        real += sum(chunk)
        padded += rounded(max(chunk), multiple) * len(chunk)
    return 0.0 if padded == 0 else round(1 - real / padded, 4)


def pick(effective: int, probes: list[ProbeRun], budget_gib: float,
         headroom_gib: float = HEADROOM_GIB) -> int | None:
    """The largest probed micro-batch that ran and stayed `headroom_gib` under the budget."""
    fits = [p["micro_batch"] for p in probes if not p["oom"]
            and p["peak_reserved_gib"] <= budget_gib - headroom_gib
            and effective % p["micro_batch"] == 0]
    return max(fits) if fits else None


def choose(written: Shape, device: str, budget_gib: float, longest: int,
           probe: Callable[[int, int], ProbeRun],
           say: Callable[[str], None] = print) -> tuple[Shape, Choice]:
    """The split in force under `split = "auto"` and the record of how it was chosen.
    `probe(micro_batch, length)` measures one forward + backward (see `measure`)."""
    effective = written.effective
    if device != "cuda":
        return written, {"mode": "auto", "probe": None, "reason": CPU_REASON}
    probes: list[ProbeRun] = []
    chosen = None
    for m in candidates(effective):
        probes.append(probe(m, longest))
        chosen = pick(effective, probes, budget_gib)
        if chosen is not None:
            break
    if chosen is None:  # even micro-batch 1 did not fit with headroom: let the run try it
        chosen = 1
        reason = (f"no micro-batch fitted {budget_gib:g} GiB with {HEADROOM_GIB:g} GiB headroom "
                  f"at {longest} tokens: micro-batch 1 (an out-of-memory step will stop the run)")
    else:
        p = next(p for p in probes if p["micro_batch"] == chosen)
        how = "is predicted to peak" if p.get("predicted") else "peaked"
        reason = (f"largest divisor of the effective batch {effective} whose training step at "
                  f"the longest sequence ({longest} tokens) {how} at "
                  f"{p['peak_reserved_gib']:.2f} GiB reserved, within {budget_gib:g} GiB less "
                  f"{HEADROOM_GIB:g} GiB headroom")
    shape = Shape(chosen, effective // chosen)
    say(f"micro-batch auto: {shape.micro_batch} x {shape.grad_accum} (written "
        f"{written.micro_batch} x {written.grad_accum}); {reason}")
    probe_record: ProbeRecord = {"length": longest, "budget_gib": budget_gib,
                                 "headroom_gib": HEADROOM_GIB, "runs": probes}
    return shape, {"mode": "auto", "probe": probe_record, "reason": reason}


def fixed() -> Choice:
    return {"mode": "fixed", "probe": None, "reason": "split = 'fixed': the split as written"}


def longest_tokens(tokenizer: Any, texts: list[str], max_seq_length: int) -> list[int]:
    """Each conversation's training length in tokens as the Trainer will see it: the text
    tokenized with special tokens, plus EOS when the text does not end with it, truncated at
    max_seq_length (what SFTTrainer's tokenization does with plain text)."""
    eos = tokenizer.eos_token or ""
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    return [min(len(i) + (0 if t.endswith(eos) else 1), max_seq_length)
            for t, i in zip(texts, ids, strict=True)]


def padding_figures(lengths: list[int], effective: int, seed: int,
                    step_order: str = "sampled", multiple: int = 0) -> dict[str, float]:
    """Padded share per candidate micro-batch, keyed by the micro-batch."""
    within = effective if step_order == "length" else 0
    return {str(m): padded_share(lengths, m, seed, within, multiple)
            for m in sorted(candidates(effective))}


# ---- train.step_order = "length" ---------------------------------------------------------------
def step_sorted(order: list[int], lengths: Sequence[int], effective: int) -> list[int]:
    """The same indices in the same optimizer steps (consecutive runs of `effective`; a last,
    shorter step stays last), each step's indices sorted longest first (ties keep their order):
    the micro-batches cut from it then hold sequences of close lengths, and the first
    micro-batch of every step is its longest (an out-of-memory step shows on the first)."""
    if effective < 1:
        raise ValueError(f"effective batch {effective} < 1")
    out: list[int] = []
    for i in range(0, len(order), effective):
        out += sorted(order[i:i + effective], key=lambda j: -lengths[j])
    return out


class StepOrder:
    """A training sampler: `base`'s order (the sampler the Trainer would use, so the seeded
    shuffle and a resume's skipped micro-batches are the Trainer's own), each optimizer step's
    sequences sorted longest first (`step_sorted`). A torch DataLoader takes any sized iterable
    as its sampler; `set_epoch` reaches the base (accelerate reseeds it per epoch)."""

    def __init__(self, base: Any, lengths: Sequence[int], effective: int) -> None:
        self.base, self.lengths, self.effective = base, list(lengths), effective

    def __iter__(self) -> Iterator[int]:
        yield from step_sorted(list(iter(self.base)), self.lengths, self.effective)

    def __len__(self) -> int:
        return len(self.base)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)


# Peak reserved GiB = base_gib + gib_per_token x (micro-batch x longest sequence), measured
# with this package's trainer under the 14.74 GiB cap (fp16, NF4 double quant, LoRA r 16 on 7
# modules, gradient checkpointing): `repro bench train` at seq 2048 (micro-batch 2: 6.17 GiB,
# 4: 7.88 GiB; BENCHMARKS.md) on the H100 and again on the H200, and the H200 lengths-bench
# runs at the stand-in's lengths (longest 1,057: 2 x 4 5.43-5.53 GiB, 4 x 8 6.30-6.41, 8 x 1 7.85,
# 16 x 2 11.27). The line through the seq-2048 pair predicts the others within 0.3 GiB.
MISTRAL_7B = {"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 14336,
              "vocab_size": 32768}
CALIBRATIONS: list[Calibration] = [
    {"backend": "unsloth", "shape": MISTRAL_7B, "gradient_checkpointing": True,
     "base_gib": 4.45, "gib_per_token": 0.000419,
     # train.checkpoint_layers = "auto": what one layer left un-checkpointed adds per token of
     # the micro-batch (its activations kept for the backward): repro bench train --mode
     # lengths at micro-batch 1, 32 / 16 / 0 layers checkpointed, the sample's longest 962
     # tokens, H100 2026-12-06: 5.098 / 6.402 / 7.869 GiB reserved -> 8.5e-05 and 9.0e-05 (the
     # larger kept)
     "gib_per_layer_token": 9.001e-05,
     "source": "repro bench train (seq 2048, micro-batch 2 and 4) on the H100 and H200; "
               "the H200 lengths-bench runs at the stand-in's lengths"},
]
SAFETY = 1.05  # on the predicted peak: the calibration's largest miss was 4 %


def calibration(backend: str, model_config: Any, gradient_checkpointing: bool
                ) -> Calibration | None:
    """The calibration for this backend and model shape, or None."""
    for c in CALIBRATIONS:
        if (c["backend"] == backend and bool(gradient_checkpointing) == c["gradient_checkpointing"]
                and all(getattr(model_config, k, None) == v for k, v in c["shape"].items())):
            return c
    return None


def predictor(cal: Calibration) -> Callable[[int, int], ProbeRun]:
    """A probe for `choose` that predicts from the calibration instead of running a step."""

    def probe(micro_batch: int, length: int) -> ProbeRun:
        peak = (cal["base_gib"] + cal["gib_per_token"] * micro_batch * length) * SAFETY
        return {"micro_batch": micro_batch, "oom": False, "peak_reserved_gib": round(peak, 3),
                "predicted": True}

    return probe


@dataclass(frozen=True)
class MemoryKey:
    """What a calibration is keyed on: the backend, the model's shape (its config) and whether
    gradient checkpointing is on."""

    backend: str
    model_config: Any
    gradient_checkpointing: bool


def auto(written: Shape, device: str, budget_gib: float, longest: int, key: MemoryKey,
         say: Callable[[str], None] = print) -> tuple[Shape, Choice]:
    """`split = "auto"`: the chosen split and its record (CPU and uncalibrated models keep the
    written split)."""
    if device != "cuda":
        return written, {"mode": "auto", "probe": None, "reason": CPU_REASON}
    backend, gradient_checkpointing = key.backend, key.gradient_checkpointing
    cal = calibration(backend, key.model_config, gradient_checkpointing)
    if cal is None:
        reason = (f"no memory calibration for the {backend} backend with this model shape "
                  f"(gradient checkpointing {'on' if gradient_checkpointing else 'off'}): the "
                  "split is kept as written")
        say(f"micro-batch auto: {written.micro_batch} x {written.grad_accum}; {reason}")
        return written, {"mode": "auto", "probe": None, "reason": reason}
    shape, choice = choose(written, device, budget_gib, longest, predictor(cal), say)
    choice["probe"]["calibration"] = {k: cal[k] for k in ("base_gib", "gib_per_token", "source")}
    choice["probe"]["safety"] = SAFETY
    return shape, choice
