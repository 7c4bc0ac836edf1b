"""Run directories for the verify and report tests.

`paper_run` writes what a paper-profile run on a GPU leaves behind, in the stages' own formats
(segment summaries through advisor_repro.training.segments.summarize, the judge summary through
advisor_repro.judges.stats.summarize), with figures inside the paper's ranges. Training cannot
run here at 7B scale; these files stand in for its outputs, never for the code under test.
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any

import pytest

from advisor_repro.config import load_config
from advisor_repro.files import write_json, write_jsonl
from advisor_repro.judges import stats as judge_stats
from advisor_repro.manifest import write_manifest
from advisor_repro.training import segments

PAPER_DRAW = [
    151,
    127,
    77,
    43,
    261,
    68,
    371,
    280,
    178,
    231,
    2,
    211,
    122,
    123,
    97,
    167,
    192,
    251,
    375,
    380,
    281,
    109,
    356,
    38,
    247,
    334,
    9,
    388,
    358,
    26,
    225,
    66,
    169,
    238,
    244,
    144,
    349,
    55,
    200,
    369,
    94,
    34,
    106,
    299,
    376,
    246,
    343,
    165,
    233,
    333,
]


def steps(n: int, epochs: float, warmup: int, lr: float, loss: Any) -> list[dict[str, Any]]:
    """steps.jsonl rows as StepLog writes them: lr is the rate used in that step (0 at the
    first warmup step), linear decay after the warmup."""
    rows = []
    for s in range(1, n + 1):
        k = s - 1
        rate = lr * k / warmup if k < warmup else lr * (n - k) / (n - warmup)
        rows.append(
            {
                "step": s,
                "epoch": round(epochs * s / n, 4),
                "loss": loss(s),
                "lr": rate,
                "grad_norm": 0.3,
                "tokens": 4000,
                "elapsed": 70.0 * s,
                "mem": {"cuda_allocated_gib": 6.1, "cuda_reserved_gib": 7.9},
            }
        )
    return rows


def segment_summary(rows: list[dict[str, Any]], reserved: float,
                    effective: int) -> dict[str, Any]:
    return {
        "stage": "train",
        "device": "cuda",
        "trainable_params": 41_943_040,
        "optimizer_steps": rows[-1]["step"],
        "epochs_done": rows[-1]["epoch"],
        **segments.summarize(rows),
        "last_loss": rows[-1]["loss"],
        "effective_batch": effective,
        "process_seconds": rows[-1]["elapsed"] + 300.0,
        "memory_peak": {
            "cuda_allocated_gib": reserved - 1.5,
            "cuda_reserved_gib": reserved,
            "nvml_used_gib": reserved + 0.6,
        },
    }


def judge_verdicts(seed: int = 7) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """50 verdicts in the released judge-scores format whose de-blinded marginals are the
    paper's: domain base 2.14 (SD 0.53) / FT 1.74 (0.69), helpfulness 2.14 (0.49) / 1.82
    (0.59), 18 divergent prompts (16 favour base), preferences 23 / 9 / 18."""
    pairs = (
        [(3, 3)] * 4
        + [(2, 2)] * 27
        + [(0, 0)]
        + [(2, 3), (1, 2), (3, 2)]
        + [(3, 1)] * 5
        + [(2, 1)] * 9
        + [(2, 0)]
    )
    help_base = [0] + [2] * 40 + [3] * 9
    help_ft = [1] * 14 + [2] * 31 + [3] * 5
    prefs = ["base"] * 23 + ["ft"] * 9 + ["tie"] * 18
    order = list(range(50))
    random.Random(seed).shuffle(order)
    mapping = judge_stats.slot_mapping(list(range(50)), 42)
    rows = []
    for sid in range(50):
        i = order[sid]
        (db, df), hb, hf, pref = pairs[i], help_base[i], help_ft[i], prefs[i]
        a_is_base = mapping[str(sid)] == "A"
        slot = {"base": "a" if a_is_base else "b", "ft": "b" if a_is_base else "a", "tie": "tie"}
        rows.append(
            {
                "sample_id": sid,
                "domain_a": db if a_is_base else df,
                "help_a": hb if a_is_base else hf,
                "domain_b": df if a_is_base else db,
                "help_b": hf if a_is_base else hb,
                "preferred_slot": slot[pref],
                "note_a": "",
                "note_b": "",
            }
        )
    return rows, mapping


def bertscore_items(seed: int = 3) -> tuple[list[float], list[float]]:
    """50 per-item F1 pairs whose means are the paper's 256-token ones (0.0948, 0.1581, delta
    0.0634 to 4 decimals); their spread, and so the CI, is made up."""
    rng = random.Random(seed)
    base = [rng.gauss(0.095, 0.06) for _ in range(50)]
    ft = [b + rng.gauss(0.063, 0.05) for b in base]
    shift_b, shift_f = 0.09476 - statistics.fmean(base), 0.15814 - statistics.fmean(ft)
    return [b + shift_b for b in base], [f + shift_f for f in ft]


def metric_block(base: list[float], ft: list[float]) -> dict[str, Any]:
    from advisor_repro.stats import bootstrap_ci_numpy

    deltas = [f - b for b, f in zip(base, ft, strict=True)]
    lo, hi = bootstrap_ci_numpy(deltas)
    return {
        "base": statistics.fmean(base),
        "ft": statistics.fmean(ft),
        "delta": statistics.fmean(deltas),
        "ci_low": lo,
        "ci_high": hi,
    }


def write_paper_run(run: Path, judge_backend: str = "anthropic") -> Path:
    cfg = load_config("paper", [f"judge.backend='{judge_backend}'"])
    write_manifest(run, cfg, "paper", [f"judge.backend='{judge_backend}'"], "repro all")
    write_json(
        run / "data/fingerprint.json",
        {
            "source": "hf:millat/StudyAbroadGPT-Dataset",
            "splits": {"train": {"n": 2274}, "test": {"n": 402}},
        },
    )
    prompts = [
        {
            "sample_id": i,
            "dataset_index": d,
            "prompt": f"question {min(i, 47)}",
            "reference": "a reference",
        }
        for i, d in enumerate(PAPER_DRAW)
    ]
    write_jsonl(run / "data/eval_prompts.jsonl", prompts)
    split = {
        "valid_rate": 1.0,
        "schema_pass_rate": 1.0,
        "role_alternation_pass_rate": 1.0,
        "empty_fields": 0,
        "exact_duplicate_groups": 0,
        "exact_duplicate_conversations": 0,
        "turns_mean": 5.19,
        "turns_sd": 0.98,
        "turns_min": 4,
        "turns_max": 6,
        "distinct_1": 0.0054,
        "distinct_2": 0.1111,
        "repeated_answer_groups": 2,
        "repeated_answer_instances": 4,
        "repeated_answer_groups_pooled": 1,
        "repeated_answer_instances_pooled": 2,
    }
    write_json(
        run / "audit-data/table2.json",
        {
            "train": split,
            "test": split,
            "all": split,
            "train_test": {
                "train_test_exact_overlap": 0,
                "near_dup_test_conversations": 0,
                "max_sim_mean": 0.5115,
                "max_sim_sd": 0.0777,
                "max_sim_min": 0.2873,
                "max_sim_max": 0.6969,
            },
            "eval_prompts": {
                "test_prompts": 50,
                "test_prompts_in_train_any_human": 41,
                "test_prompts_in_train_first_human": 38,
            },
        },
    )
    # the last epochs the paper's Trainer logged: 1,136 of 1,137 micro-batches, and 1 + 560/569
    seg1 = steps(284, 1136 / 1137, 9, 2e-4,
                 lambda s: 0.4109 if s == 261 else 1.0125 - 0.53 * s / 284)
    seg2 = steps(
        142,
        1 + 560 / 569,
        5,
        2e-4,
        lambda s: (
            0.2963
            if s == 120
            else (0.4343 + 0.09 * s / 72 if s <= 72 else 0.45 - 0.11 * (s - 72) / 70)
        ),
    )
    control = steps(426, 3.0, 13, 2e-4, lambda s: 1.0125 - 0.66 * s / 426)
    for name, rows, reserved, eff in (("train-1", seg1, 7.9, 8), ("train-2", seg2, 9.2, 32)):
        write_jsonl(run / name / "steps.jsonl", rows)
        write_json(run / name / "summary.json", segment_summary(rows, reserved, eff))
    write_jsonl(run / "control/steps.jsonl", control)
    write_json(run / "handoff/verified.json", {"ok": True, "trainable_params_loaded": 41_943_040})
    truncated = {("base", 256): 48, ("ft", 256): 48, ("base", 512): 12, ("ft", 512): 10}
    answers = [
        {
            "sample_id": i,
            "model": m,
            "cap": c,
            "text": "an answer",
            "new_tokens": c,
            "truncated": i < truncated[(m, c)],
            "seconds": 1.0,
        }
        for c in (256, 512)
        for m in ("base", "ft")
        for i in range(50)
    ]
    write_jsonl(run / "generate/answers.jsonl", answers)
    base, ft = bertscore_items()
    write_jsonl(
        run / "metrics/per_item.jsonl",
        [
            {"sample_id": i, "cap": c, "model": m, "bertscore_f1": v}
            for c in (256, 512)
            for m, vals in (("base", base), ("ft", ft))
            for i, v in enumerate(vals)
        ],
    )
    summary = {
        str(c): {
            "bertscore_f1": metric_block(base, ft),
            "rouge_l_f1": metric_block([0.18] * 50, [0.2] * 50),
            "sacrebleu": {"base": 2.6 * c / 256, "ft": 4.1 * c / 256, "delta": 1.5 * c / 256},
        }
        for c in (256, 512)
    }
    write_json(run / "metrics/summary.json", summary)
    verdicts, mapping = judge_verdicts()
    judged = judge_stats.summarize(verdicts, mapping).to_json()
    judged["judge"] = {"backend": judge_backend, "model": cfg.judge.model}
    write_json(run / "judge/summary.json", judged)
    write_json(
        run / "audit/summary.json",
        {"confident_errors": {"ft": 3, "base": 0}, "abstentions": {"base": 2, "ft": 1}},
    )
    write_json(
        run / "audit-training/summary.json",
        {"n": 40, "hard": {"k": 12, "rate": 0.3}, "inclusive": {"k": 17, "rate": 0.425}},
    )
    return run


@pytest.fixture
def paper_run(tmp_path) -> Path:
    return write_paper_run(tmp_path / "paper-run")
