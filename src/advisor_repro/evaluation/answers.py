"""The generate stage's core: load one model at a time (the base, then the base + adapter),
answer every prompt at the largest cap in batches sized to the VRAM budget (halving on
out-of-memory), append each batch's rows durably, and summarise the pass."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NotRequired, TypedDict

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


def kv_cache(cfg: Config, device: str, backend: str | None) -> str:
    """The KV cache this run uses: the profile's, or for "auto" static where Triton runs
    (torch compiles the static-cache decoding step) and dynamic elsewhere. `device` and
    `backend` are preflight/decision.json's."""
    if cfg.generate.kv_cache != "auto":
        return cfg.generate.kv_cache
    cuda = device == "cuda" and backend != "hf"
    return "static" if cuda else "dynamic"


class PassStatsJson(TypedDict):
    answers: int
    tokens: int
    seconds: float
    oom_halvings: int
    batch_size: NotRequired[int]
    tokens_per_s: float | None


@dataclass
class PassStats:
    """One model's generation in this run (summary.json's per_model_this_run entry)."""

    answers: int = 0
    tokens: int = 0
    seconds: float = 0.0
    oom_halvings: int = 0
    batch_size: int | None = None  # the last batch's size; None until a batch has run

    def to_json(self) -> PassStatsJson:
        out: PassStatsJson = {
            "answers": self.answers, "tokens": self.tokens, "seconds": self.seconds,
            "oom_halvings": self.oom_halvings,
            "tokens_per_s": round(self.tokens / self.seconds, 2) if self.seconds else None}
        if self.batch_size is not None:
            out["batch_size"] = self.batch_size
        return out

    @classmethod
    def from_json(cls, d: PassStatsJson) -> PassStats:
        return cls(d["answers"], d["tokens"], d["seconds"], d["oom_halvings"],
                   d.get("batch_size"))


@dataclass
class AnswerRun:
    """What every generation pass of a run shares: the prompts and their token ids, the
    tokenizer, the settings, how the models load, the KV cache and the answers log."""

    cfg: Config
    spec: gen.LoadSpec
    log: gen.AnswerLog
    tok: Any
    prompts: list[gen.EvalPrompt]
    ids: list[list[int]]
    cache: str = "dynamic"  # kv_cache()'s choice

    def missing(self, name: str, caps: list[int]) -> list[int]:
        """Indices of the prompts that lack an answer of model `name` at one of `caps`."""
        return [i for i, p in enumerate(self.prompts)
                if any((p["sample_id"], name, c) not in self.log for c in caps)]


def generate_model(run: AnswerRun, name: str, model: Any) -> PassStats:
    """All missing answers of one model, in batches appended to the log as they finish."""
    caps = sorted(run.cfg.generate.caps)
    passes = [caps] if run.cfg.generate.shared_prefix else [[c] for c in caps]
    stats = PassStats()
    for caps_now in passes:
        todo = run.missing(name, caps_now)
        if todo:
            _run_pass(run, name, model, todo, caps_now, stats)
    return stats


def _run_pass(run: AnswerRun, name: str, model: Any, todo: list[int], caps: list[int],
              stats: PassStats) -> None:
    """One generation pass at max(caps) over the prompts `todo`; halves the batch on OOM."""
    tok, ids, log = run.tok, run.ids, run.log
    eos = {tok.eos_token_id, *_as_list(model.generation_config.eos_token_id)} - {None}
    steps = max(caps)
    bs = gen.batch_size_for(model, run.spec, run.cfg.hardware.vram_budget_gib,
                            max(len(ids[i]) for i in todo), steps, len(todo),
                            run.cfg.generate.batch_size)
    bar = _progress(-(-len(todo) // bs) * steps, f"generate {name} (caps {caps})")
    ticks = [0]  # decoding steps of the batch in flight, for the progress bar
    decoding = gen.Decoding(pad_id=tok.pad_token_id, eos_ids=eos,
                            cache_implementation=None if run.cache == "dynamic" else run.cache)

    def tick() -> None:
        bar.update(1)
        ticks[0] += 1

    while todo:
        chunk, ticks[0] = todo[:bs], 0
        t0 = time.perf_counter()
        try:
            results = gen.generate_batch(
                model, [ids[i] for i in chunk], caps, decoding, on_step=tick,
                decode=lambda t: tok.decode(t, skip_special_tokens=True).strip(),
            )
        except Exception as exc:
            if not _is_oom(exc):
                raise
            if bs == 1:
                raise _oom_error(exc) from exc
            bs, stats.oom_halvings = bs // 2, stats.oom_halvings + 1
            bar.n -= ticks[0]
            bar.total = bar.n + -(-len(todo) // bs) * steps
            _empty_cache()
            continue
        bar.update(steps - ticks[0])  # a batch whose answers all ended early
        rows = [_row(run.prompts[i], len(ids[i]), name, cap, r, len(chunk))
                for i, per_cap in zip(chunk, results, strict=True)
                for cap, r in zip(caps, per_cap, strict=True)
                if (run.prompts[i]["sample_id"], name, cap) not in log]
        log.append(rows)
        stats.batch_size = bs
        stats.answers += len(rows)
        stats.tokens += sum(max(r["new_tokens"] for r in per_cap) for per_cap in results)
        stats.seconds += time.perf_counter() - t0
        todo = todo[len(chunk):]
    bar.close()


def _row(prompt: gen.EvalPrompt, prompt_tokens: int, model: str, cap: int,
         r: gen.CapResult, batch: int) -> gen.AnswerRow:
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


class AdapterRecord(TypedDict):
    option: str  # generate.adapter
    path: str  # relative to the run directory when the adapter is the run's own
    tree_sha256: str


@dataclass
class GenerateSummary:
    """generate/summary.json: how the answers were made (device, precision, deviations, VRAM),
    from which models, and what this run generated or resumed."""

    device: str
    quant: str  # "nf4" | "none"
    double_quant: bool | None  # None when not quantized
    compute_dtype: str
    deviations: list[str]
    vram: dict[str, float]  # the cap (total_gib, cap_gib) and the peaks on a GPU
    base_model: str
    base_revision: str
    adapter: AdapterRecord
    ft_variant: str
    caps: list[int]
    shared_prefix: bool
    double_bos: bool
    answers: int
    resumed_answers: int
    dropped_partial_bytes: int
    generated_this_run: int
    per_model_this_run: dict[str, PassStats]
    kv_cache: str

    def to_json(self) -> dict[str, Any]:
        """summary.json: every field in order, each model's pass as PassStats writes it."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["per_model_this_run"] = {k: v.to_json() for k, v in self.per_model_this_run.items()}
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GenerateSummary:
        per_model = {k: PassStats.from_json(v) for k, v in d["per_model_this_run"].items()}
        return cls(**{**d, "per_model_this_run": per_model})


@dataclass(frozen=True)
class Provenance:
    """Where the two models came from and how they loaded, for the summary."""

    deviations: list[str]
    vram: dict[str, float]  # gen.cap_vram's record ({} on the CPU)
    base_revision: str
    adapter: Path


def generation_summary(run: AnswerRun, prov: Provenance, kept: int,
                       per_model: dict[str, PassStats]) -> GenerateSummary:
    cfg, spec, log = run.cfg, run.spec, run.log
    return GenerateSummary(
        device=spec.device,
        quant="nf4" if spec.quant else "none",
        double_quant=spec.double_quant if spec.quant else None,
        compute_dtype=spec.compute_dtype,
        deviations=prov.deviations,
        vram={**prov.vram, **_peak_vram()},
        base_model=cfg.model.eval_base,
        base_revision=prov.base_revision,
        adapter={"option": cfg.generate.adapter, "path": str(prov.adapter),
                 "tree_sha256": tree_sha(prov.adapter)},
        ft_variant=cfg.generate.ft_variant,
        caps=sorted(cfg.generate.caps),
        shared_prefix=cfg.generate.shared_prefix,
        double_bos=cfg.generate.double_bos,
        answers=len(log.rows),
        resumed_answers=kept,
        dropped_partial_bytes=log.dropped_bytes,
        generated_this_run=sum(s.answers for s in per_model.values()),
        per_model_this_run=per_model,
        kv_cache=run.cache,
    )  # fmt: skip


def _peak_vram() -> dict[str, float]:
    import torch

    if not torch.cuda.is_available():
        return {}
    return {"peak_reserved_gib": round(torch.cuda.max_memory_reserved(0) / gen.GIB, 3),
            "peak_allocated_gib": round(torch.cuda.max_memory_allocated(0) / gen.GIB, 3)}
