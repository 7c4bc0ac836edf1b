"""The judge stage's core (Table 4): each prompt's two answers in blind slots, one verdict per
prompt and pass, and the summary the stage and `repro import-release` both write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from advisor_repro.config import Config
from advisor_repro.errors import JudgeError
from advisor_repro.evaluation.generation import AnswerRow, EvalPrompt
from advisor_repro.files import read_json, read_jsonl, sha256_file, write_json
from advisor_repro.judges.asking import Question, ask_all
from advisor_repro.judges.cache import CachedJudge
from advisor_repro.judges.records import JudgeSummary, VerdictRow
from advisor_repro.judges.replay import pair_key
from advisor_repro.judges.rubric import PairVerdict, pair_messages, parse_pair
from advisor_repro.judges.stats import summarize, swapped

Plan = list[tuple[EvalPrompt, str, str]]  # (prompt, pass, base slot) of each question


def answers_at_cap(rows: list[AnswerRow], cap: int) -> dict[tuple[str, str], str]:
    """(sample_id, model) -> text of the answers generated at `cap` new tokens."""
    return {(str(r["sample_id"]), r["model"]): r["text"] for r in rows if r["cap"] == cap}


def pair_questions(
    prompts: list[EvalPrompt],
    answers: dict[tuple[str, str], str],
    base_slot: dict[str, str],
    passes: list[str],
) -> tuple[Plan, list[Question[PairVerdict]]]:
    """([(prompt, pass, base slot)], [the pair question]) for every prompt and pass."""
    plan: Plan = []
    questions: list[Question[PairVerdict]] = []
    for pass_name in passes:
        for p in prompts:
            sid = str(p["sample_id"])
            slot = base_slot[sid] if pass_name == "primary" else swapped(base_slot[sid])
            base, ft = answers[(sid, "base")], answers[(sid, "ft")]
            a, b = (base, ft) if slot == "A" else (ft, base)
            plan.append((p, pass_name, slot))
            questions.append(Question(pair_messages(p["prompt"], a, b), parse_pair,
                                      pair_key(p["sample_id"], pass_name)))
    return plan, questions


def judge_pairs(
    judge: CachedJudge,
    prompts: list[EvalPrompt],
    answers: dict[tuple[str, str], str],
    base_slot: dict[str, str],
    passes: list[str],
    parse_retries: int,
    log: Callable[[str], object] | None = None,
) -> list[VerdictRow]:
    """One verdict row per prompt and pass (the released judge-scores columns + bookkeeping).
    Every question of every pass is independent: they are asked together (batched by the
    local judge; one at a time over HTTP), each reply cached as it arrives."""
    plan, questions = pair_questions(prompts, answers, base_slot, passes)
    replies = ask_all(judge, questions, parse_retries)
    rows: list[VerdictRow] = []
    for (p, pass_name, slot), reply in zip(plan, replies, strict=True):
        if reply.status == "missing":
            raise JudgeError(
                f"the replay file has no {pass_name} verdict for sample {p['sample_id']}",
                "replay a file made for these prompts, or --set judge.swap_pass=false",
            )
        rows.append(
            {
                "sample_id": p["sample_id"],
                "pass": pass_name,
                "base_slot": slot,
                **(reply.parsed or {}),
                **reply.record(),
                "judge": judge.identity,
            }
        )
    if log:
        for name in passes:
            got = [r["status"] for r in rows if r["pass"] == name]
            log(f"[judge] {name}: {got.count('ok')}/{len(got)} verdicts ok")
    return rows


def summarize_folder(judge_dir: Path, resamples: int = 1000, seed: int = 42) -> JudgeSummary:
    """summary.json for a judge folder written elsewhere (`repro import-release`): reads
    verdicts.jsonl and mapping.json there, writes summary.json there, returns it."""
    from advisor_repro.judges.stats import base_slots

    rows = read_jsonl(judge_dir / "verdicts.jsonl")
    summary = summarize(rows, base_slots(read_json(judge_dir / "mapping.json")), resamples, seed)
    write_json(judge_dir / "summary.json", summary.to_json())
    return summary


def figures(summary: JudgeSummary) -> dict[str, int | float | None]:
    """The key figures of `repro status`: the primary pass's counts and deltas."""
    p = summary.passes.get("primary")
    prefs = p["preference"]["counts"] if p else {}
    out: dict[str, int | float | None] = {
        "n": p["n_judged"] if p else None,
        "pref_base": prefs.get("base"),
        "pref_ft": prefs.get("ft"),
        "ties": prefs.get("tie"),
        "unparseable": prefs.get("not_ok"),
    }
    for metric in ("domain", "help"):
        block = p["scores"].get(metric) if p else None
        if block:
            out[f"d_{metric}"] = round(block["delta"], 3)
    if summary.swap_consistency is not None:
        rate = summary.swap_consistency["consistency_rate"]
        out["consistency"] = round(rate, 3) if rate is not None else None
    return out


def warnings(summary: JudgeSummary) -> list[str]:
    out = []
    for name, counts in summary.status_counts.items():
        bad = sum(v for k, v in counts.items() if k != "ok")
        if bad:
            total = sum(counts.values())
            out.append(f"{bad} of {total} {name} verdicts are not usable JSON (counted as "
                       "'not_ok', left out of the score statistics)")
    return out


def external_inputs(cfg: Config) -> dict[str, str]:
    """A replayed file is an input; the local judge's weights are named by the config."""
    if cfg.judge.backend == "replay" and cfg.judge.replay_file:
        path = Path(cfg.judge.replay_file).expanduser()
        return {"replay_file": sha256_file(path) if path.is_file() else "missing"}
    return {}


def judge_calls(cfg: Config) -> int:
    """Judge calls in one pass over the sample (two with the swap pass), before re-asks."""
    n = cfg.judge.sample or cfg.data.eval_prompts
    return n * (2 if cfg.judge.swap_pass else 1)
