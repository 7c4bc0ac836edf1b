"""How a run's effective batch is split into micro-batch x grad-accum (`train.*.split`).

The paper's math depends on the effective batch (sequences per optimizer step), not on its
split: the Trainer normalises the loss by the label tokens of the whole optimizer step
(transformers' num_items_in_batch), so k x m and (k*m) x 1 are the same gradient
(tests/training/test_split_equality.py shows it on the CPU). A larger micro-batch runs the GPU
better at the data's real lengths; `split = "auto"` takes the largest divisor of the effective
batch that fits the VRAM budget.

How "fits" is decided: a measured probe, not a memory model. At the start of the run, for the
candidate micro-batches from the largest down, one forward + backward at the longest sequence
the data will produce (its longest tokenized conversation, at most max_seq_length) under the
run's autocast dtype, on the loaded model, under the process's VRAM cap; the first whose peak
reserved memory stays `HEADROOM_GIB` under the budget wins. A probe is a worst-case micro-batch
(right padding pads each micro-batch to its longest sequence), costs a few seconds, and follows
any model, backend or GPU; a memory model would have to be calibrated for each of them. An
out-of-memory first step still halves the micro-batch (trainer._shrink).

On the CPU there is no VRAM to measure: auto keeps the split as written, and says so.

Also here: the padded share of a split at the data's lengths (pure), recorded with the choice.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable
from typing import Any

from advisor_repro.training.segments import Shape

GIB = 2**30
# Kept free beyond the probe's peak: the 8-bit AdamW state of the LoRA weights (2 bytes a
# parameter: 84 MB for the 7B's 41.9 M) and allocator fragmentation over varying lengths.
HEADROOM_GIB = 0.5
CPU_REASON = ("no VRAM to measure on the CPU: the split is kept as written "
              "(auto re-divides the effective batch only on a GPU)")


def candidates(effective: int) -> list[int]:
    """Micro-batches that divide the effective batch exactly, largest first: 8 -> 8, 4, 2, 1."""
    return [m for m in range(effective, 0, -1) if effective % m == 0]


def padded_share(lengths: list[int], micro_batch: int, seed: int = 42) -> float:
    """The share of padding tokens in the micro-batches of one epoch, each padded on the right
    to its longest sequence, in a seeded random order (the Trainer shuffles too; the share is a
    property of the lengths and the micro-batch size, not of one order)."""
    order = list(lengths)
    random.Random(seed).shuffle(order)
    real = padded = 0
    for i in range(0, len(order), micro_batch):
        chunk = order[i:i + micro_batch]
        real += sum(chunk)
        padded += max(chunk) * len(chunk)
    return 0.0 if padded == 0 else round(1 - real / padded, 4)


def pick(effective: int, probes: list[dict[str, Any]], budget_gib: float,
         headroom_gib: float = HEADROOM_GIB) -> int | None:
    """The largest probed micro-batch that ran and stayed `headroom_gib` under the budget."""
    fits = [p["micro_batch"] for p in probes if not p["oom"]
            and p["peak_reserved_gib"] <= budget_gib - headroom_gib
            and effective % p["micro_batch"] == 0]
    return max(fits) if fits else None


def choose(written: Shape, device: str, budget_gib: float, longest: int,
           probe: Callable[[int, int], dict[str, Any]],
           say: Callable[[str], None] = print) -> tuple[Shape, dict[str, Any]]:
    """The split in force under `split = "auto"` and the record of how it was chosen.
    `probe(micro_batch, length)` measures one forward + backward (see `measure`)."""
    effective = written.effective
    if device != "cuda":
        return written, {"mode": "auto", "probe": None, "reason": CPU_REASON}
    probes: list[dict[str, Any]] = []
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
        reason = (f"largest divisor of the effective batch {effective} whose forward + backward "
                  f"at the longest sequence ({longest} tokens) peaked at "
                  f"{p['peak_reserved_gib']:.2f} GiB reserved, within {budget_gib:g} GiB less "
                  f"{HEADROOM_GIB:g} GiB headroom")
    shape = Shape(chosen, effective // chosen)
    say(f"micro-batch auto: {shape.micro_batch} x {shape.grad_accum} (written "
        f"{written.micro_batch} x {written.grad_accum}); {reason}")
    probe_record = {"length": longest, "budget_gib": budget_gib, "headroom_gib": HEADROOM_GIB,
                    "runs": probes}
    return shape, {"mode": "auto", "probe": probe_record, "reason": reason}


def fixed() -> dict[str, Any]:
    return {"mode": "fixed", "probe": None, "reason": "split = 'fixed': the split as written"}


def longest_tokens(tokenizer: Any, texts: list[str], max_seq_length: int) -> list[int]:
    """Each conversation's training length in tokens as the Trainer will see it: the text
    tokenized with special tokens, plus EOS when the text does not end with it, truncated at
    max_seq_length (what SFTTrainer's tokenization does with plain text)."""
    eos = tokenizer.eos_token or ""
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    return [min(len(i) + (0 if t.endswith(eos) else 1), max_seq_length)
            for t, i in zip(texts, ids, strict=True)]


def padding_figures(lengths: list[int], effective: int, seed: int) -> dict[str, float]:
    """Padded share per candidate micro-batch, keyed by the micro-batch."""
    return {str(m): padded_share(lengths, m, seed) for m in sorted(candidates(effective))}


def measure(model: Any, dtype: Any, vocab_size: int, seed: int = 0) -> Callable[[int, int],
                                                                              dict[str, Any]]:
    """A probe for `choose`: one forward + backward of `model` at [micro_batch, length] random
    token ids under autocast(dtype) (None = no autocast), gradients then dropped; peak
    reserved memory measured from an emptied cache. An out-of-memory error is a result."""

    def probe(micro_batch: int, length: int) -> dict[str, Any]:
        import time

        import torch

        device = next(p.device for p in model.parameters())
        g = torch.Generator().manual_seed(seed)
        ids = torch.randint(3, vocab_size, (micro_batch, length), generator=g).to(device)
        model.train()
        _free(model)
        torch.cuda.reset_peak_memory_stats()
        t0 = time.monotonic()
        oom = False
        try:
            with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            torch.cuda.synchronize()
        except torch.OutOfMemoryError:
            oom = True  # freed below, once the exception no longer pins the tensors
        loss = None  # drop the graph before measuring what is left
        peak = torch.cuda.max_memory_reserved() / GIB
        _free(model)
        return {"micro_batch": micro_batch, "oom": oom, "peak_reserved_gib": round(peak, 3),
                "seconds": round(time.monotonic() - t0, 2)}

    return probe


def _free(model: Any) -> None:
    import torch

    model.zero_grad(set_to_none=True)
    gc.collect()
    torch.cuda.empty_cache()
