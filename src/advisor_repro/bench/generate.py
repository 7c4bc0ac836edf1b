"""`repro bench generate`: batched generation against one prompt at a time, on the 7B shape.

On the rehearsal base (a randomly initialised model of the exact Mistral-7B-Instruct-v0.3
architecture, created once and saved as fp16 safetensors; advisor_repro.models.rehearsal), loaded
the way the generate stage loads the paper's base (4-bit NF4, double quant, fp16 compute), with the
process held to the VRAM budget (hardware.vram_budget_gib: the 16 GB class), one run measures:

  sequential  plain `model.generate`, one prompt at a time (what the author's notebook did),
              on the first few prompts only; its tokens/s is extrapolated to all answers
  batched     the generate stage's own path (evaluation.generation.generate_batch): all
              answers left-padded in batches of the size the stage would fit to the budget

Every answer is forced to its full length (min_new_tokens = new tokens, so EOS cannot end it
early): random weights would otherwise stop at arbitrary points. Prompts are random token ids
of 24-64 tokens (the eval prompts' templated length), so left padding is exercised. Reported:
tokens/s of each, their ratio against the target (>= 50x), the steady milliseconds per
decoding step of the batch, peak reserved/allocated memory.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from advisor_repro.config import Config
from advisor_repro.errors import PreflightError
from advisor_repro.evaluation import generation as gen
from advisor_repro.hardware.gpu import cap_vram
from advisor_repro.manifest import bench_environment

LIBS = ("torch", "transformers", "bitsandbytes", "accelerate")  # the libraries a record names

TARGET_SPEEDUP = 50.0
PROMPT_LEN = (24, 64)  # tokens, templated eval prompts
FIRST_ID = 3  # random prompt ids avoid <unk>, <s>, </s>
STEADY_FROM = 15  # steady decoding rate measured from this step on


@dataclass(frozen=True)
class GenerateOptions:
    """What `repro bench generate` was asked to measure."""
    answers: int  # answers generated batched
    new_tokens: int  # new tokens per answer, forced
    sequential: int  # prompts generated one at a time (tokens/s extrapolated to all)
    variants: list[str]  # the batched runs' KV caches: "dynamic", "static"
    scale: str = "full"  # "tiny": 2 small layers on the CPU, a code-path check


# ---- the record (runs/bench/generate.json) ----------------------------------------------------
class Sequential(TypedDict):
    """Plain HF generate, one prompt at a time."""
    prompts: int
    tokens: int
    seconds: float
    per_answer_s: list[float]
    tokens_per_s: float
    extrapolated_seconds_all: NotRequired[float]  # added by `run`


class Batched(TypedDict, total=False):
    """One batched run (all keys but `error` when it ran, only `error` when it failed)."""
    batch_size: int  # after the halvings
    oom_halvings: int
    answers: int
    tokens: int
    all_full_length: bool
    seconds: float
    tokens_per_s: float
    cache: str  # the KV cache, "dynamic" or "static"
    steady_tokens_per_s: float | None
    steady_step_ms: float | None
    peak_reserved_gib: float  # on a GPU only
    peak_allocated_gib: float
    speedup: float  # over the sequential tokens/s
    meets_target: bool
    error: str


class LoadBlock(TypedDict):
    """generation.LoadSpec as the record names it."""
    device: str
    quant: bool
    double_quant: bool
    compute_dtype: str


class GenerateRecord(TypedDict):
    what: str
    scale: str
    answers: int
    new_tokens: int
    target_speedup: float
    vram: dict[str, float]  # VramCap.generate_json(): total_gib, cap_gib ({} on the CPU)
    base_seconds: float
    load: LoadBlock
    environment: dict[str, str | None]  # library versions, and "gpu" on a GPU
    batched: dict[str, Batched]  # by KV cache, filled as each runs
    sequential: NotRequired[Sequential]


def random_prompts(n: int, vocab: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(FIRST_ID, vocab) for _ in range(rng.randint(*PROMPT_LEN))]
            for _ in range(n)]  # fmt: skip


def sequential(model: Any, prompts: list[list[int]], new_tokens: int, eos: int) -> Sequential:
    """Plain HF generate, batch 1, each answer forced to `new_tokens`."""
    import torch

    device = next(model.parameters()).device
    times, tokens = [], 0
    for ids in prompts:
        x = torch.tensor([ids], device=device)
        _sync()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=x, attention_mask=torch.ones_like(x),
                                 max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 do_sample=False, pad_token_id=eos, eos_token_id=eos)
        _sync()
        times.append(time.perf_counter() - t0)
        tokens += out.shape[1] - x.shape[1]
    seconds = sum(times)
    return {"prompts": len(prompts), "tokens": tokens, "seconds": round(seconds, 3),
            "per_answer_s": [round(t, 3) for t in times],
            "tokens_per_s": round(tokens / seconds, 3)}  # fmt: skip


def batched(model: Any, prompts: list[list[int]], new_tokens: int, eos: int, batch_size: int,
            cache: str | None = None) -> Batched:
    """The generate stage's batch path over all prompts; halves the batch on OOM. Besides
    end-to-end tokens/s, the steady decoding rate: tokens per second between the 16th and the
    last step of each batch (no prefill, no one-time compilation)."""
    import torch

    bs, done, tokens, full, halvings = batch_size, 0, 0, True, 0
    steady_tokens, steady_s, steady_steps = 0, 0.0, 0
    t0 = time.perf_counter()
    while done < len(prompts):
        chunk, stamps = prompts[done:done + bs], []
        try:
            results = gen.generate_batch(model, chunk, [new_tokens],
                                         gen.Decoding(eos, [eos], new_tokens, cache),
                                         on_step=lambda s=stamps: s.append(time.perf_counter()))
        except torch.OutOfMemoryError:
            if bs == 1:
                raise
            bs, halvings = bs // 2, halvings + 1
            torch.cuda.empty_cache()
            continue
        tokens += sum(r[0]["new_tokens"] for r in results)
        full = full and all(r[0]["new_tokens"] == new_tokens for r in results)
        if len(stamps) > STEADY_FROM + 1:
            steady_tokens += len(chunk) * (len(stamps) - 1 - STEADY_FROM)
            steady_steps += len(stamps) - 1 - STEADY_FROM
            steady_s += stamps[-1] - stamps[STEADY_FROM]
        done += len(chunk)
    _sync()
    seconds = time.perf_counter() - t0
    return {"batch_size": bs, "oom_halvings": halvings, "answers": len(prompts),
            "tokens": tokens, "all_full_length": full, "seconds": round(seconds, 3),
            "tokens_per_s": round(tokens / seconds, 3), "cache": cache or "dynamic",
            "steady_tokens_per_s": round(steady_tokens / steady_s, 3) if steady_s else None,
            "steady_step_ms": round(1000 * steady_s / steady_steps, 3) if steady_s else None,
            **_peak()}  # fmt: skip


def run(cfg: Config, opts: GenerateOptions, say: Any = print,
        save: Any = None) -> GenerateRecord:
    """The whole benchmark; `save(record)` is called after each phase, so a run cut short
    still leaves what it measured."""
    import torch

    answers, new_tokens, scale = opts.answers, opts.new_tokens, opts.scale

    save = save or (lambda record: None)
    on_gpu = torch.cuda.is_available()
    if scale == "full" and not on_gpu:
        raise PreflightError("repro bench generate needs a CUDA GPU for the 7B shape",
                             "run it on the GPU machine (README, Benchmarks)")
    model, spec, base_s = _load(scale, on_gpu, say)
    eos = 2  # Mistral's </s>, also pad (the paper: pad = eos)
    prompts = random_prompts(answers, model.config.vocab_size)
    record: GenerateRecord = {
        "what": "repro bench generate", "scale": scale, "answers": answers,
        "new_tokens": new_tokens, "target_speedup": TARGET_SPEEDUP,
        "vram": cap_vram("cuda" if on_gpu else "cpu", cfg.hardware.vram_budget_gib).generate_json(),
        "base_seconds": round(base_s, 1), "load": LoadBlock(**spec.__dict__),
        "environment": bench_environment(LIBS), "batched": {},
    }  # fmt: skip
    say("warm-up ...")
    gen.generate_batch(model, prompts[:2], [8], gen.Decoding(eos, [eos], min_new_tokens=8))
    say(f"sequential: {opts.sequential} prompts x {new_tokens} tokens, one at a time ...")
    seq = sequential(model, prompts[:opts.sequential], new_tokens, eos)
    seq["extrapolated_seconds_all"] = round(answers * new_tokens / seq["tokens_per_s"], 1)
    record["sequential"] = seq
    save(record)
    bs = gen.batch_size_for(model, spec, cfg.hardware.vram_budget_gib,
                            max(len(p) for p in prompts), new_tokens, answers, 0)
    for variant in opts.variants:
        say(f"batched ({variant} cache): {answers} answers x {new_tokens} tokens, batch {bs}")
        _reset_peak()
        try:
            res = batched(model, prompts, new_tokens, eos, bs,
                          None if variant == "dynamic" else variant)
            res["speedup"] = round(res["tokens_per_s"] / seq["tokens_per_s"], 2)
            res["meets_target"] = res["speedup"] >= TARGET_SPEEDUP
        except Exception as exc:  # a variant that fails is reported, the others still run
            res = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        record["batched"][variant] = res
        save(record)
        say(f"  -> {res}")
    return record


def _load(scale: str, on_gpu: bool, say: Any) -> tuple[Any, gen.LoadSpec, float]:
    from advisor_repro.models.cache import cache_root
    from advisor_repro.models.rehearsal import random_base_dir

    t0 = time.monotonic()
    say(f"rehearsal base ({scale}): creating it if absent ...")
    base = random_base_dir(cache_root(), scale, create=True)
    spec = gen.LoadSpec("cuda", True, True, "float16") if on_gpu else \
        gen.LoadSpec("cpu", False, True, "float32")
    say(f"loading {base} ({'NF4' if spec.quant else 'fp32'}) ...")
    model = gen.load_model(base, spec)
    return model, spec, time.monotonic() - t0


def markdown(record: GenerateRecord) -> str:
    """The BENCHMARKS.md table of one run."""
    env, seq, load = record["environment"], record["sequential"], record["load"]
    weights = "NF4 double quant" if load["quant"] else "unquantized"
    lines = [
        f"GPU: {env.get('gpu') or 'none (CPU)'}, VRAM cap {record['vram'].get('cap_gib')} GiB; "
        f"torch {env.get('torch')}, transformers {env.get('transformers')}, bitsandbytes "
        f"{env.get('bitsandbytes')}. Mistral-7B-v0.3 shape ({record['scale']}), random "
        f"weights, {weights}, {load['compute_dtype']} compute; {record['answers']} answers x "
        f"{record['new_tokens']} new tokens, every answer forced to full length.",
        "",
        "| generation | batch | tokens/s | speedup | steady tokens/s | ms per decoding step "
        "(steady) | peak reserved GiB | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| HF generate, one at a time ({seq['prompts']} prompts; time for all extrapolated) "
        f"| 1 | {seq['tokens_per_s']:.1f} | 1.0x | | | | {seq['extrapolated_seconds_all']} |",
    ]
    for name, r in record["batched"].items():
        if "error" in r:
            lines.append(f"| batched, {name} KV cache | | failed: {r['error'][:60]} | | | | | |")
            continue
        lines.append(f"| batched, {name} KV cache (generate stage) | {r['batch_size']} | "
                     f"{r['tokens_per_s']:.1f} | {r['speedup']:.1f}x | "
                     f"{r['steady_tokens_per_s']} | {r.get('steady_step_ms') or '-'} | "
                     f"{r.get('peak_reserved_gib', '')} | {r['seconds']} |")
    return "\n".join(lines)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak() -> dict[str, float]:
    import torch

    if not torch.cuda.is_available():
        return {}
    return {"peak_reserved_gib": round(torch.cuda.max_memory_reserved() / gen.GIB, 3),
            "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / gen.GIB, 3)}


