"""`repro bench judge`: the local judge's verdicts per second, one question at a time against
batched, and its cost per token under the rubric's grammar against free decoding, in one run.

The judge is the paper profile's local judge architecture: Qwen2.5-14B-Instruct's shape with
random weights (models/standin.py: fp16 safetensors written once, a ChatML byte-level
BPE tokenizer), loaded by the judge stage's own code path (LocalJudge: NF4 double quant on
the GPU, held to hardware.vram_budget_gib). `--scale tiny` uses a 2-layer model of the same
recipe on the CPU: a code-path check whose figures say nothing about a GPU.

The questions are pair verdicts of the paper's catalog prompts (judge_fit.pairs: answers of
~256 tokens, prompts of ~900 tokens), both slot orders, numbered so that no two are equal.
Measured, each on the same questions:

  one at a time   constrained, batch 1, every question (what the judge stage did before)
  batched         constrained, the batch the judge stage fits to the VRAM budget, the masks
                  as the stage computes them (LocalJudge.overlap_masks: after each forward)
  batched_overlap the same, the next step's masks computed during the forward pass
                  (grammar.py: overlap; batched_step_by_step instead, were overlap the stage's)
  free, batch 1 / batched   no grammar, every row forced to `free_tokens` new tokens (random
                  weights never stop on their own): the per-token baseline of the grammar

Per-token cost is the median time of a decoding step after the first (the prefill), so
replies of different lengths compare fairly. Verdicts are "valid" when the strict parser
accepts them. Targets: batched >= 5x one at a time; grammar <= 10% per token.
"""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from advisor_repro.config import Config
from advisor_repro.hardware.gpu import GIB
from advisor_repro.manifest import bench_environment
from advisor_repro.models.standin import QWEN_TINY

LIBS = ("torch", "transformers", "bitsandbytes", "llguidance")  # the libraries a record names

# the batched run the stage does not make: keyed by the stage's LocalJudge.overlap_masks
OTHER = {False: "batched_overlap", True: "batched_step_by_step"}
TARGET_BATCH_SPEEDUP = 5.0
TARGET_GRAMMAR_OVERHEAD = 0.10
TINY = QWEN_TINY  # the stand-in's CPU shape (models/standin.py)


@dataclass(frozen=True)
class JudgeOptions:
    """What `repro bench judge` was asked to measure."""
    questions: int  # pair questions judged
    free_tokens: int  # tokens each row decodes without the grammar
    scale: str  # "full": the 14B shape on the GPU; "tiny": 2 small layers on the CPU
    standin_dir: Path  # where the random-weight judge is written once


# ---- the record (runs/bench/judge.json) -------------------------------------------------------
class Measurement(TypedDict, total=False):
    """One run over the questions (all keys but `error` when it ran, only `error` when it
    ran out of memory)."""
    questions: int
    batch: int  # after the halvings
    seconds: float
    verdicts_per_s: float
    valid: int  # replies the strict parser accepts
    new_tokens: int
    step_ms: float | None  # median decoding step after the prefill
    example: str  # the first reply, cut at 300 characters
    error: str


class Ratios(TypedDict, total=False):
    """The runs against each other and the targets, where both sides were measured."""
    batch_speedup: float
    batch_target_met: bool
    overlap_step_ratio: float  # masks during the forward / after it, per step
    grammar_overhead_one_at_a_time: float
    grammar_overhead_batched: float
    grammar_target_met: bool


class JudgeRecord(Ratios, total=False):
    scale: str
    questions: int
    free_tokens: int
    environment: dict[str, str | None]  # library versions, and "gpu" on a GPU
    budget_gib: float
    max_tokens: int
    build_s: float
    load_s: float
    identity: dict[str, Any]  # the LocalJudge's identity
    after_load_gib: float  # on a GPU
    prompt_tokens: list[int]  # shortest, longest
    fitted_batch: int
    stage_overlap: bool  # LocalJudge.overlap_masks: what the judge stage runs
    runs: dict[str, Measurement]  # by run name, filled as each runs
    peak_reserved_gib: float  # on a GPU
    peak_allocated_gib: float
    within_budget: bool


def questions(n: int) -> list[Any]:
    """n distinct pair questions from the catalog prompts (both slot orders)."""
    from advisor_repro.bench.judge_fit import pairs
    from advisor_repro.judges.rubric import pair_messages

    base = [(q, a, b) for q, right, wrong in pairs() for a, b in ((right, wrong), (wrong, right))]
    out = []
    for i in range(n):
        q, a, b = base[i % len(base)]
        out.append(pair_messages(f"{q} (question {i + 1})", a, b))
    return out


def _median_step(steps: list[float]) -> float | None:
    gaps = [b - a for a, b in itertools.pairwise(steps)]
    return statistics.median(gaps) if gaps else None


def measure(judge: Any, encoded: list[list[int]], batch: int, force_tokens: int = 0
            ) -> Measurement:
    """Every prompt through judge._generate in batches of `batch`: seconds, valid replies,
    tokens, median step time."""
    import torch

    from advisor_repro.judges.rubric import ReplyError, parse_pair

    texts, seconds, tokens, step_medians, at = [], 0.0, 0, [], 0
    while at < len(encoded):
        chunk = encoded[at : at + batch]
        try:
            texts += judge._generate(chunk, ["pair"] * len(chunk), force_tokens=force_tokens)
        except torch.cuda.OutOfMemoryError:
            if batch == 1:
                raise
            batch //= 2  # as the judge stage does: the same rows in halves
            torch.cuda.empty_cache()
            continue
        at += len(chunk)
        seconds += judge.last_seconds
        tokens += sum(judge.last_new_tokens)
        if (m := _median_step(judge.last_steps)) is not None:
            step_medians.append(m)
    valid = 0
    for t in texts:
        try:
            parse_pair(t)
            valid += 1
        except ReplyError:
            pass
    return {"questions": len(encoded), "batch": batch, "seconds": round(seconds, 3),
            "verdicts_per_s": round(len(encoded) / seconds, 4), "valid": valid,
            "new_tokens": tokens, "step_ms": round(1000 * statistics.median(step_medians), 3)
            if step_medians else None, "example": texts[0][:300] if texts else ""}


def run(cfg: Config, opts: JudgeOptions, say: Any, save: Any = None) -> JudgeRecord:
    import torch

    from advisor_repro.bench.judge_fit import build_standin
    from advisor_repro.judges.local import LocalJudge, LocalRun
    from advisor_repro.models.standin import QWEN25_14B

    n, free_tokens, scale, standin_dir = (opts.questions, opts.free_tokens, opts.scale,
                                          opts.standin_dir)
    on_gpu = scale == "full"
    if on_gpu and not torch.cuda.is_available():
        from advisor_repro.errors import PreflightError

        raise PreflightError("repro bench judge needs a CUDA GPU at --scale full",
                             "run it on the GPU machine, or --scale tiny on the CPU")
    record: JudgeRecord = {"scale": scale, "questions": n, "free_tokens": free_tokens,
                           "environment": bench_environment(LIBS),
                           "budget_gib": cfg.hardware.vram_budget_gib,
                           "max_tokens": cfg.judge.max_tokens}
    t0 = time.monotonic()
    say(f"judge stand-in ({scale}) in {standin_dir}: creating it if absent ...")
    folder = build_standin(standin_dir, shape=QWEN25_14B if on_gpu else TINY,
                           device="cuda" if on_gpu else "cpu",
                           conversations=600 if on_gpu else 40)
    record["build_s"] = round(time.monotonic() - t0, 1)
    t0 = time.monotonic()
    judge = LocalJudge(folder, "Qwen2.5-14B-shape-random" if on_gpu else "tiny-qwen2-random",
                       "standin", cfg.judge, "cuda" if on_gpu else "cpu", cfg.judge.local_quant,
                       LocalRun(budget_gib=cfg.hardware.vram_budget_gib if on_gpu else 0.0))
    record["load_s"] = round(time.monotonic() - t0, 1)
    record["identity"] = judge.identity
    if on_gpu:
        record["after_load_gib"] = round(torch.cuda.memory_allocated() / GIB, 3)
        torch.cuda.reset_peak_memory_stats()
    encoded = [judge.encode(m) for m in questions(n)]
    record["prompt_tokens"] = [min(map(len, encoded)), max(map(len, encoded))]
    bs = judge.batch_size(max(map(len, encoded)), n)
    record["fitted_batch"] = bs
    runs: dict[str, Measurement] = {}
    stage = record["stage_overlap"] = LocalJudge.overlap_masks  # what the judge stage runs
    plan = [("one_at_a_time", 1, "grammar", 0, stage), ("batched", bs, "grammar", 0, stage),
            (OTHER[stage], bs, "grammar", 0, not stage),
            ("free_one_at_a_time", 1, "free", free_tokens, stage),
            ("free_batched", bs, "free", free_tokens, stage)]
    for name, batch, decoding, force, overlap in plan:
        judge.decoding, judge.overlap_masks = decoding, overlap
        sub = encoded if decoding == "grammar" else encoded[: max(batch, 2)]
        say(f"[bench judge] {name}: {len(sub)} questions, batch {batch}, {decoding} ...")
        try:
            runs[name] = measure(judge, sub, batch, force)
        except torch.cuda.OutOfMemoryError as exc:
            runs[name] = {"error": f"out of memory at batch {batch}: {str(exc)[:200]}"}
            torch.cuda.empty_cache()
        say(f"[bench judge] {name}: {runs[name]}")
        record["runs"] = runs
        if save:
            save(record)
    judge.decoding, judge.overlap_masks = "grammar", LocalJudge.overlap_masks
    record.update(_ratios(runs))
    if on_gpu:
        record["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / GIB, 3)
        record["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / GIB, 3)
        record["within_budget"] = record["peak_reserved_gib"] <= cfg.hardware.vram_budget_gib
    judge.close()
    if save:
        save(record)
    return record


def _ratios(runs: dict[str, Measurement]) -> Ratios:
    out: Ratios = {}
    one, bat = runs.get("one_at_a_time", {}), runs.get("batched", {})
    if "verdicts_per_s" in one and "verdicts_per_s" in bat:
        out["batch_speedup"] = round(bat["verdicts_per_s"] / one["verdicts_per_s"], 2)
        out["batch_target_met"] = out["batch_speedup"] >= TARGET_BATCH_SPEEDUP
    other = next((k for k in OTHER.values() if k in runs), None)
    if other and bat.get("step_ms") and runs[other].get("step_ms"):
        # the step with the masks computed during the forward against after it
        during, after = (runs[other], bat) if other == OTHER[False] else (bat, runs[other])
        out["overlap_step_ratio"] = round(during["step_ms"] / after["step_ms"], 4)
    if (x := _overhead(one, runs.get("free_one_at_a_time", {}))) is not None:
        out["grammar_overhead_one_at_a_time"] = x
    if (x := _overhead(bat, runs.get("free_batched", {}))) is not None:
        out["grammar_overhead_batched"] = x
    over = [out[k] for k in ("grammar_overhead_one_at_a_time", "grammar_overhead_batched")
            if k in out]
    if over:
        out["grammar_target_met"] = max(over) <= TARGET_GRAMMAR_OVERHEAD
    return out


def _overhead(grammar: Measurement, free: Measurement) -> float | None:
    """The grammar's cost per decoding step over free decoding at the same batch."""
    gs, fs = grammar.get("step_ms"), free.get("step_ms")
    return round(gs / fs - 1, 4) if gs and fs else None


def markdown(record: JudgeRecord) -> str:
    env, runs = record["environment"], record.get("runs", {})
    ident = record.get("identity", {})
    lines = [
        f"GPU: {env.get('gpu') or 'none (CPU)'}, VRAM cap {record['budget_gib']} GiB "
        f"(peak reserved {record.get('peak_reserved_gib', '-')} GiB); torch {env.get('torch')}, "
        f"transformers {env.get('transformers')}, bitsandbytes {env.get('bitsandbytes')}, "
        f"llguidance {env.get('llguidance')}. Judge: Qwen2.5-14B shape ({record['scale']}), "
        f"random weights, {ident.get('quant')} / {ident.get('dtype')}; {record['questions']} "
        f"pair questions of {record['prompt_tokens'][0]}-{record['prompt_tokens'][1]} prompt "
        f"tokens, reply budget {record['max_tokens']} tokens; free decoding forced to "
        f"{record['free_tokens']} tokens a row.",
        "",
        "| run | decoding | batch | questions | valid | verdicts/s | ms per step | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in runs.items():
        dec = "free" if name.startswith("free") else "grammar"
        if "error" in r:
            lines.append(f"| {name} | {dec} | | | | failed: {r['error'][:60]} | | |")
            continue
        lines.append(f"| {name.replace('_', ' ')} | {dec} | {r['batch']} | {r['questions']} | "
                     f"{r['valid']} | {r['verdicts_per_s']} | {r['step_ms']} | {r['seconds']} |")
    lines.append("")
    if "batch_speedup" in record:
        lines.append(f"Batched / one at a time: {record['batch_speedup']}x verdicts/s (target "
                     f">= {TARGET_BATCH_SPEEDUP:.0f}x: "
                     f"{'met' if record['batch_target_met'] else 'NOT met'}).")
    if "overlap_step_ratio" in record:
        lines.append(f"Masks during the forward / after it, per batched decoding step: "
                     f"{record['overlap_step_ratio']}x (the stage computes them "
                     f"{'during' if record.get('stage_overlap') else 'after'}).")
    for k in ("grammar_overhead_one_at_a_time", "grammar_overhead_batched"):
        if k in record:
            run = k.removeprefix("grammar_overhead_")
            g, f = runs[run], runs[f"free_{run}"]
            lines.append(f"Grammar cost per decoding step, {run.replace('_', ' ')} (batch "
                         f"{g['batch']}): {g['step_ms']} ms against {f['step_ms']} ms free "
                         f"at batch {f['batch']} ({100 * record[k]:+.1f}%; target <= "
                         f"{100 * TARGET_GRAMMAR_OVERHEAD:.0f}%).")
    return "\n".join(lines)


