"""Stage `judge`: the blind LLM judge of PAPER.md "Evaluation", and its statistics (Table 4).

Each prompt's base and fine-tuned answers at `judge.cap` tokens go into slots A and B by the
paper's rule (per prompt in order, random.Random(42).random() < 0.5 puts base in A); the judge
scores each slot for domain accuracy and helpfulness (0-3) and prefers a / b / tie, as JSON.
With `judge.swap_pass` a second pass shows every pair with the slots swapped.

Outputs: mapping.json (the rule and each prompt's base slot), verdicts.jsonl (one row per
prompt and pass: slot scores, preference, notes, status, the judge's identity and settings,
the cache key), summary.json (advisor_repro.judges.stats.summarize), cache/ (replies paid for).

Refused before judge/ is touched (`check`): answers missing at judge.cap, an API key not in the
variable judge.api_key_env names, a replay file that is not there.
"""

from __future__ import annotations

from advisor_repro.config import Config
from advisor_repro.errors import DataError, JudgeError
from advisor_repro.evaluation.generation import AnswerRow, EvalPrompt
from advisor_repro.files import read_jsonl, write_json, write_jsonl
from advisor_repro.hardware.projection import GpuWork
from advisor_repro.judges import check_backend, make_judge, waits
from advisor_repro.judges import unavailable as judge_unavailable
from advisor_repro.judges.local import model_caches
from advisor_repro.judges.pairs import (
    answers_at_cap,
    external_inputs,
    figures,
    judge_calls,
    judge_pairs,
    pair_questions,
    warnings,
)
from advisor_repro.judges.stats import mapping_document, summarize
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult

Prompts = list[EvalPrompt]


def check(cfg: Config, ctx: StageContext) -> None:
    """Before judge/ is touched (its verdicts kept): both answers of every judged prompt are
    there at judge.cap, and the judge can be asked (its API key, a replay file). A missing key
    is refused only when a question is not in judge/cache: replies paid for are re-scored
    without it."""
    prompts, chosen, answers = judged_inputs(cfg, ctx)
    try:
        check_backend(cfg.judge)
    except JudgeError as exc:
        mapping = mapping_document([p["sample_id"] for p in prompts], cfg.judge.slot_seed)
        _, questions = pair_questions(chosen, answers, mapping["base_slot"], passes(cfg))
        judge = make_judge(cfg, ctx.out / "cache")  # asks nothing until told to
        try:
            todo = judge.uncached([q.messages for q in questions])
        finally:
            judge.close()
        if todo:
            raise JudgeError(f"{exc.problem}; {todo} of {len(questions)} questions are not in "
                             f"{ctx.out / 'cache'}; nothing was changed", exc.fix) from exc


def passes(cfg: Config) -> list[str]:
    return ["primary", "swap"] if cfg.judge.swap_pass else ["primary"]


def judged_inputs(cfg: Config, ctx: StageContext
                  ) -> tuple[Prompts, Prompts, dict[tuple[str, str], str]]:
    """(all prompts, the judged ones, answers at judge.cap); refuses answers missing there."""
    jc = cfg.judge
    prompts = read_jsonl(ctx.input("data/eval_prompts.jsonl"))
    rows: list[AnswerRow] = read_jsonl(ctx.input("generate/answers.jsonl"))
    answers = answers_at_cap(rows, jc.cap)
    chosen = prompts[: jc.sample] if jc.sample else prompts
    missing = [
        f"{p['sample_id']}/{m}" for p in chosen for m in ("base", "ft")
        if (str(p["sample_id"]), m) not in answers
    ]
    if missing:
        caps = sorted({r["cap"] for r in rows})
        raise DataError(
            f"generate/answers.jsonl has no answer at cap {jc.cap} (judge.cap) for "
            f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}; it holds caps "
            f"{caps}",
            f"rerun repro generate --run-dir {ctx.run_dir} (it answers at generate.caps), or "
            "set judge.cap to a cap the answers have",
        )
    return prompts, chosen, answers


def run(cfg: Config, ctx: StageContext) -> StageResult:
    jc = cfg.judge
    prompts, chosen, answers = judged_inputs(cfg, ctx)  # as check() did: the inputs it judges
    mapping = mapping_document([p["sample_id"] for p in prompts], jc.slot_seed)
    write_json(ctx.out / "mapping.json", mapping)
    judge = make_judge(cfg, ctx.out / "cache")
    try:
        rows = judge_pairs(judge, chosen, answers, mapping["base_slot"], passes(cfg),
                           jc.parse_retries, log=print)
    finally:
        judge.close()
    write_jsonl(ctx.out / "verdicts.jsonl", rows)
    summary = summarize(rows, mapping["base_slot"], jc.bootstrap_resamples, jc.bootstrap_seed)
    summary.judge = judge.identity
    summary.calls = {"paid": judge.calls, "cached": judge.hits}
    summary.asking = judge.asking()  # seconds, local batches: the stage's own cost
    write_json(ctx.out / "summary.json", summary.to_json())
    return StageResult(figures=figures(summary), warnings=warnings(summary))


def estimate(cfg: Config) -> Estimate:
    n = judge_calls(cfg)
    per_call = {"anthropic": 8.0, "openai": 8.0, "local": 6.0, "replay": 0.0}[cfg.judge.backend]
    if cfg.model.source == "smoke":
        per_call = 4.0 if cfg.judge.backend == "local" else per_call
    vram = 10.5 if cfg.judge.backend == "local" and cfg.model.source != "smoke" else 0.0
    return Estimate(seconds=30 + waits(cfg.judge, n) * per_call, disk_bytes=n * 8_192,
                    vram_gib=vram)


STAGE = Stage(
    name="judge",
    summary="blind LLM judge of base vs fine-tuned answers (Table 4): slots, scores, preference",
    run=run,
    needs=("data/eval_prompts.jsonl", "generate/answers.jsonl"),
    config=("judge",),
    external=external_inputs,
    estimate=estimate,
    check=check,
    caches=model_caches,  # the local judge's model, while still to be converted or downloaded
    prerequisites=judge_unavailable,
    gpu_work=GpuWork("judged", judge_calls, rest_s=30.0),
)
