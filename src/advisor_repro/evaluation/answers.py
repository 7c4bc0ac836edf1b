"""The generate stage's core: load one model at a time (the base, then the base + adapter),
answer every prompt at the largest cap in batches sized to the VRAM budget (halving on
out-of-memory), append each batch's rows durably, and summarise the pass."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

from advisor_repro.config import Config
from advisor_repro.errors import ResourceError
from advisor_repro.evaluation import generation as gen
from advisor_repro.files import canonical_json, hash_tree, sha256_text

CPU_FP32_NOTE = (
    "generation ran on the CPU in fp32, not 4-bit NF4 (generate.quant_on_cpu = false): "
    "bitsandbytes NF4 on the CPU measured ~5x slower; the paper's NF4 path runs on the GPU"
)


def tree_sha(folder: Path) -> str:
    return sha256_text(canonical_json(hash_tree(folder)))



def load_spec(cfg: Config, device: str) -> tuple[gen.LoadSpec, list[str]]:
    """How both models load on this device, and the deviations from the paper it implies."""
    g = cfg.generate
    if device == "cuda":  # the paper: NF4, double quant, fp16 compute
        return gen.LoadSpec("cuda", g.quant == "nf4", g.double_quant, "float16"), []
    quant = g.quant == "nf4" and g.quant_on_cpu
    notes = [CPU_FP32_NOTE] if g.quant == "nf4" and not quant else []
    return gen.LoadSpec("cpu", quant, g.double_quant, "float32"), notes


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


def load_ft(cfg: Config, base_dir: Path, adapter: Path, spec: gen.LoadSpec, out: Path) -> Any:
    if cfg.generate.ft_variant == "adapter":
        return gen.load_model(base_dir, spec, adapter=adapter)
    merged = out / "partial" / "merged"  # transient: not an output, removed after use
    shutil.rmtree(merged, ignore_errors=True)
    dtype = "float16" if spec.device == "cuda" else "float32"
    return gen.load_model(gen.merge_adapter(base_dir, adapter, merged, dtype), spec)


def generation_summary(cfg: Config, spec: gen.LoadSpec, deviations: list[str],
                       vram: dict[str, float], base_revision: str, adapter: Path,
                       log: gen.AnswerLog, kept: int, per_model: dict[str, Any]) -> dict[str, Any]:
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
                    "tree_sha256": tree_sha(adapter)},
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
