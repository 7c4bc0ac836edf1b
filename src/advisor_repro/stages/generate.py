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
from pathlib import Path

from advisor_repro.config import Config
from advisor_repro.evaluation import generation as gen
from advisor_repro.evaluation.answers import (
    AnswerRun,
    PassStats,
    Provenance,
    generate_model,
    generation_summary,
    kv_cache,
    load_ft,
    load_spec,
    tree_sha,
)
from advisor_repro.files import (
    read_json,
    read_jsonl,
    sha256_file,
    write_json,
)
from advisor_repro.hardware.gpu import cap_vram
from advisor_repro.hardware.projection import GpuWork
from advisor_repro.models import hub as models
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult

ADAPTER_INPUTS = {"train-2": "train-2/adapter", "handoff": "handoff/bundle"}


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


def check(cfg: Config, ctx: StageContext) -> None:
    """Before the folder is touched: the adapter `generate.adapter` names exists."""
    resolve_adapter(cfg, ctx)


def run(cfg: Config, ctx: StageContext) -> StageResult:
    prompts: list[gen.EvalPrompt] = read_jsonl(ctx.input("data/eval_prompts.jsonl"))
    decision = read_json(ctx.input("preflight/decision.json"))
    device = decision["device"]
    adapter = resolve_adapter(cfg, ctx)
    spec, deviations = load_spec(cfg, device)
    vram = cap_vram(device, cfg.hardware.vram_budget_gib).generate_json()
    base_dir, base_revision = models.base_model(cfg.model, "eval")
    log = gen.AnswerLog(ctx.out / "answers.jsonl")
    kept = len(log.rows)
    tok = gen.load_tokenizer(base_dir)
    ids = gen.encode_prompts(tok, [p["prompt"] for p in prompts], cfg.generate.double_bos)
    answer_run = AnswerRun(cfg, spec, log, tok, prompts, ids,
                           kv_cache(cfg, device, decision.get("backend")))
    per_model: dict[str, PassStats] = {}
    for name in gen.MODELS:
        if not answer_run.missing(name, list(cfg.generate.caps)):
            continue
        if name == "base":
            model = gen.load_model(base_dir, spec)
        else:
            model = load_ft(cfg, base_dir, adapter, spec, ctx.out)
        per_model[name] = generate_model(answer_run, name, model)
        gen.free(model)
    shutil.rmtree(ctx.out / "partial", ignore_errors=True)
    summary = generation_summary(answer_run, Provenance(deviations, vram, base_revision, adapter),
                                 kept, per_model)
    if adapter.is_relative_to(ctx.run_dir):  # the run's own adapter: no machine path in results
        summary.adapter["path"] = adapter.relative_to(ctx.run_dir).as_posix()
    write_json(ctx.out / "summary.json", summary.to_json())
    return StageResult(
        figures={"answers": len(log.rows), "generated": summary.generated_this_run,
                 "resumed": kept, "device": device, "quant": summary.quant},
        warnings=deviations,
    )  # fmt: skip


def external_inputs(cfg: Config) -> dict[str, str]:
    """The base model's identity, and an adapter given as a path (outside the run)."""
    m = cfg.model
    out = {"base": f"{m.source}:{m.eval_base}@{m.eval_base_revision}"}
    if m.source == "smoke":
        out["base"] += ":" + sha256_file(models.smoke_gguf_path())
    if cfg.generate.adapter not in ADAPTER_INPUTS:
        path = Path(cfg.generate.adapter).expanduser()
        out["adapter"] = tree_sha(path) if path.is_dir() else "missing"
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
    needs=("preflight/decision.json", "data/eval_prompts.jsonl"),
    # the adapter `generate.adapter` names: one of these, or a PEFT folder outside the run
    # (hashed by external_inputs); `check` refuses a missing one before the folder is touched
    optional=("handoff/bundle", "train-2/adapter"),
    check=check,
    config=("generate", "model.source", "model.eval_base", "model.eval_base_revision",
            "model.random_scale", "hardware.vram_budget_gib"),
    external=external_inputs,
    estimate=estimate,
    caches=lambda cfg: models.base_model_caches(cfg.model, "eval"),
    prerequisites=lambda cfg: list(models.base_unavailable(cfg.model, "eval")),
    gpu_work=GpuWork("generate"),
)  # fmt: skip
