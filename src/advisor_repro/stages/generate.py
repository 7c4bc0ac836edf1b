"""Stage `generate`: the base and the fine-tuned model answer the evaluation prompts.

Reads data/eval_prompts.jsonl, preflight/decision.json (device) and the fine-tuned adapter
(`generate.adapter`: train-2/adapter by default). Writes generate/answers.jsonl, one line per
(sample_id, model in {base, ft}, cap): sample_id, dataset_index, model, cap, text, new_tokens,
truncated, seconds, prompt_tokens, batch_size; and generate/summary.json (device, precision,
deviations, batch sizes, tokens/s, peak VRAM, what was resumed).

Answers are appended and fsynced per batch; a killed run leaves started.json and a partial
answers.jsonl, and the rerun (same inputs) generates only the missing keys. One model is in
memory at a time: base first, freed, then the fine-tuned one. The process is held to
hardware.vram_budget_gib on a larger GPU.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

from advisor_repro import generation as gen
from advisor_repro import models
from advisor_repro.config import Config
from advisor_repro.errors import ResourceError
from advisor_repro.files import (
    canonical_json,
    hash_tree,
    read_json,
    read_jsonl,
    sha256_file,
    sha256_text,
    write_json,
)
from advisor_repro.pipeline import Estimate, Stage, StageContext, StageResult

ADAPTER_INPUTS = {"train-2": "train-2/adapter", "handoff": "handoff/bundle"}
CPU_FP32_NOTE = (
    "generation ran on the CPU in fp32, not 4-bit NF4 (generate.quant_on_cpu = false): "
    "bitsandbytes NF4 on the CPU measured ~5x slower; the paper's NF4 path runs on the GPU"
)


def load_spec(cfg: Config, device: str) -> tuple[gen.LoadSpec, list[str]]:
    """How both models load on this device, and the deviations from the paper it implies."""
    g = cfg.generate
    if device == "cuda":  # the paper: NF4, double quant, fp16 compute
        return gen.LoadSpec("cuda", g.quant == "nf4", g.double_quant, "float16"), []
    quant = g.quant == "nf4" and g.quant_on_cpu
    notes = [CPU_FP32_NOTE] if g.quant == "nf4" and not quant else []
    return gen.LoadSpec("cpu", quant, g.double_quant, "float32"), notes


def resolve_adapter(cfg: Config, ctx: StageContext) -> Path:
    choice = cfg.generate.adapter
    if choice in ADAPTER_INPUTS:
        return ctx.input(ADAPTER_INPUTS[choice])
    path = Path(choice).expanduser()
    if not (path / "adapter_config.json").is_file():
        from advisor_repro.errors import ConfigError

        raise ConfigError(
            f"generate.adapter = '{choice}' is not a PEFT adapter folder "
            "(no adapter_config.json there)",
            "use 'train-2', 'handoff' or a folder written by PEFT's save_pretrained",
        )
    return path


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="step", mininterval=0.5 if tty else 15.0)


def kv_cache(cfg: Config, decision: dict[str, Any]) -> str:
    """The KV cache this run uses: the profile's, or for "auto" static where Triton runs
    (torch compiles the static-cache decoding step) and dynamic elsewhere."""
    if cfg.generate.kv_cache != "auto":
        return cfg.generate.kv_cache
    cuda = decision.get("device") == "cuda" and decision.get("backend") != "hf"
    return "static" if cuda else "dynamic"


def generate_model(
    name: str, model: Any, tok: Any, prompts: list[dict[str, Any]], ids: list[list[int]],
    cfg: Config, spec: gen.LoadSpec, log: gen.AnswerLog, cache: str = "dynamic",
) -> dict[str, Any]:
    """All missing answers of one model, in batches appended to the log as they finish."""
    caps = sorted(cfg.generate.caps)
    passes = [caps] if cfg.generate.shared_prefix else [[c] for c in caps]
    stats: dict[str, Any] = {"answers": 0, "tokens": 0, "seconds": 0.0, "oom_halvings": 0}
    for caps_now in passes:
        todo = [i for i, p in enumerate(prompts)
                if any((p["sample_id"], name, c) not in log for c in caps_now)]
        if todo:
            _run_pass(name, model, tok, prompts, ids, todo, caps_now, cfg, spec, log, stats,
                      cache)
    return stats


def _run_pass(
    name: str, model: Any, tok: Any, prompts: list[dict[str, Any]], ids: list[list[int]],
    todo: list[int], caps: list[int], cfg: Config, spec: gen.LoadSpec, log: gen.AnswerLog,
    stats: dict[str, Any], cache: str = "dynamic",
) -> None:
    """One generation pass at max(caps) over the prompts `todo`; halves the batch on OOM."""
    eos = {tok.eos_token_id, *_as_list(model.generation_config.eos_token_id)} - {None}
    steps = max(caps)
    bs = gen.batch_size_for(model, spec, cfg.hardware.vram_budget_gib,
                            max(len(ids[i]) for i in todo), steps, len(todo),
                            cfg.generate.batch_size)
    bar = _progress(-(-len(todo) // bs) * steps, f"generate {name} (caps {caps})")
    ticks = [0]  # decoding steps of the batch in flight, for the progress bar

    def tick() -> None:
        bar.update(1)
        ticks[0] += 1

    while todo:
        chunk, ticks[0] = todo[:bs], 0
        t0 = time.perf_counter()
        try:
            results = gen.generate_batch(
                model, [ids[i] for i in chunk], caps, pad_id=tok.pad_token_id, eos_ids=eos,
                on_step=tick, decode=lambda t: tok.decode(t, skip_special_tokens=True).strip(),
                cache_implementation=None if cache == "dynamic" else cache,
            )
        except Exception as exc:
            if not _is_oom(exc):
                raise
            if bs == 1:
                raise _oom_error(exc) from exc
            bs, stats["oom_halvings"] = bs // 2, stats["oom_halvings"] + 1
            bar.n -= ticks[0]
            bar.total = bar.n + -(-len(todo) // bs) * steps
            _empty_cache()
            continue
        bar.update(steps - ticks[0])  # a batch whose answers all ended early
        rows = [_row(prompts[i], len(ids[i]), name, cap, r, len(chunk))
                for i, per_cap in zip(chunk, results, strict=True)
                for cap, r in zip(caps, per_cap, strict=True)
                if (prompts[i]["sample_id"], name, cap) not in log]
        log.append(rows)
        stats["batch_size"] = bs
        stats["answers"] += len(rows)
        stats["tokens"] += sum(max(r["new_tokens"] for r in per_cap) for per_cap in results)
        stats["seconds"] += time.perf_counter() - t0
        todo = todo[len(chunk):]
    bar.close()


def _row(prompt: dict[str, Any], prompt_tokens: int, model: str, cap: int,
         r: dict[str, Any], batch: int) -> dict[str, Any]:
    return {"sample_id": prompt["sample_id"], "dataset_index": prompt.get("dataset_index"),
            "model": model, "cap": cap, "text": r["text"], "new_tokens": r["new_tokens"],
            "truncated": r["truncated"], "seconds": r["seconds"],
            "prompt_tokens": prompt_tokens, "batch_size": batch}  # fmt: skip


def _as_list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError)


def _oom_error(exc: BaseException) -> ResourceError:
    return ResourceError(
        f"out of GPU memory even with one prompt per batch ({exc})",
        "free the GPU (another process?) or raise hardware.vram_budget_gib if the card allows",
    )


def _empty_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _load_ft(cfg: Config, base_dir: Path, adapter: Path, spec: gen.LoadSpec, out: Path) -> Any:
    if cfg.generate.ft_variant == "adapter":
        return gen.load_model(base_dir, spec, adapter=adapter)
    merged = out / "partial" / "merged"  # transient: not an output, removed after use
    shutil.rmtree(merged, ignore_errors=True)
    dtype = "float16" if spec.device == "cuda" else "float32"
    return gen.load_model(gen.merge_adapter(base_dir, adapter, merged, dtype), spec)


def run(cfg: Config, ctx: StageContext) -> StageResult:
    prompts = read_jsonl(ctx.input("data/eval_prompts.jsonl"))
    decision = read_json(ctx.input("preflight/decision.json"))
    device, cache = decision["device"], kv_cache(cfg, decision)
    adapter = resolve_adapter(cfg, ctx)
    spec, deviations = load_spec(cfg, device)
    vram = gen.cap_vram(cfg.hardware.vram_budget_gib) if device == "cuda" else {}
    base_dir, base_revision = models.base_model(cfg.model, "eval")
    log = gen.AnswerLog(ctx.out / "answers.jsonl")
    kept = len(log.rows)
    tok = gen.load_tokenizer(base_dir)
    ids = gen.encode_prompts(tok, [p["prompt"] for p in prompts], cfg.generate.double_bos)
    per_model: dict[str, Any] = {}
    for name in gen.MODELS:
        if all((p["sample_id"], name, c) in log for p in prompts for c in cfg.generate.caps):
            continue
        if name == "base":
            model = gen.load_model(base_dir, spec)
        else:
            model = _load_ft(cfg, base_dir, adapter, spec, ctx.out)
        per_model[name] = generate_model(name, model, tok, prompts, ids, cfg, spec, log, cache)
        gen.free(model)
    shutil.rmtree(ctx.out / "partial", ignore_errors=True)
    summary = _summary(cfg, spec, deviations, vram, base_revision, adapter, log, kept, per_model)
    summary["kv_cache"] = cache
    write_json(ctx.out / "summary.json", summary)
    return StageResult(
        figures={"answers": len(log.rows), "generated": summary["generated_this_run"],
                 "resumed": kept, "device": device, "quant": summary["quant"]},
        warnings=deviations,
    )  # fmt: skip


def _summary(cfg: Config, spec: gen.LoadSpec, deviations: list[str], vram: dict[str, float],
             base_revision: str, adapter: Path, log: gen.AnswerLog, kept: int,
             per_model: dict[str, Any]) -> dict[str, Any]:
    rows = list(log.rows.values())
    for stats in per_model.values():
        stats["tokens_per_s"] = round(stats["tokens"] / stats["seconds"], 2) if stats[
            "seconds"] else None
    return {
        "device": spec.device,
        "quant": "nf4" if spec.quant else "none",
        "double_quant": spec.double_quant if spec.quant else None,
        "compute_dtype": spec.compute_dtype,
        "deviations": deviations,
        "vram": {**vram, **_peak_vram()},
        "base_model": cfg.model.eval_base,
        "base_revision": base_revision,
        "adapter": {"option": cfg.generate.adapter, "path": str(adapter),
                    "tree_sha256": _tree_sha(adapter)},
        "ft_variant": cfg.generate.ft_variant,
        "caps": sorted(cfg.generate.caps),
        "shared_prefix": cfg.generate.shared_prefix,
        "double_bos": cfg.generate.double_bos,
        "answers": len(rows),
        "resumed_answers": kept,
        "dropped_partial_bytes": log.dropped_bytes,
        "generated_this_run": sum(s["answers"] for s in per_model.values()),
        "per_model_this_run": per_model,
    }  # fmt: skip


def _peak_vram() -> dict[str, float]:
    import torch

    if not torch.cuda.is_available():
        return {}
    return {"peak_reserved_gib": round(torch.cuda.max_memory_reserved(0) / gen.GIB, 3),
            "peak_allocated_gib": round(torch.cuda.max_memory_allocated(0) / gen.GIB, 3)}


def _tree_sha(folder: Path) -> str:
    return sha256_text(canonical_json(hash_tree(folder)))


def external_inputs(cfg: Config) -> dict[str, str]:
    """The base model's identity, and an adapter given as a path (outside the run)."""
    m = cfg.model
    out = {"base": f"{m.source}:{m.eval_base}@{m.eval_base_revision}"}
    if m.source == "smoke":
        out["base"] += ":" + sha256_file(models.smoke_gguf_path())
    if cfg.generate.adapter not in ADAPTER_INPUTS:
        path = Path(cfg.generate.adapter).expanduser()
        out["adapter"] = _tree_sha(path) if path.is_dir() else "missing"
    return out


def estimate(cfg: Config) -> Estimate:
    n, cap = cfg.data.eval_prompts, max(cfg.generate.caps)
    if cfg.hardware.require_cuda:  # 7B NF4: ~90 s to load, ~0.1 s per batched step
        seconds = 2 * (90 + cap * 0.1 * -(-n // 50))
        disk = 2 * cfg.model.params_total if cfg.generate.ft_variant == "merged" else 0
        # NF4 weights (~0.56 byte a parameter with the fp16 embeddings), the Mistral-7B KV
        # cache (128 KiB a token) for every prompt at once, and the reserve kept free
        kv = n * (cap + 100) * 131_072 * gen.KV_GROWTH
        vram = (cfg.model.params_total * 0.56 + kv) / gen.GIB + gen.RESERVE_GIB
        return Estimate(seconds=seconds, disk_bytes=disk + 2**20,
                        vram_gib=round(min(vram, cfg.hardware.vram_budget_gib), 1))
    return Estimate(seconds=2 * (10 + cap * 0.35 * -(-n // 16)), disk_bytes=2**20)


STAGE = Stage(
    name="generate",
    summary="base and fine-tuned model answer the eval prompts (greedy, NF4, both caps)",
    run=run,
    needs=("preflight/decision.json", "data/eval_prompts.jsonl", "handoff/bundle",
           "train-2/adapter"),
    config=("generate", "model.source", "model.eval_base", "model.eval_base_revision",
            "model.random_scale", "hardware.vram_budget_gib"),
    external=external_inputs,
    estimate=estimate,
)  # fmt: skip
