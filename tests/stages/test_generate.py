"""Stage `generate` on the CPU: the real smoke model (SmolLM2-135M) and a real LoRA adapter
(tests/conftest.py `smoke_adapter`: PEFT r16, lora_B filled with seeded noise so the fine-tuned
model answers differently) placed where segment 2 leaves its adapter (train-2/adapter), three
prompts, caps 4 and 8. Then crash-resume: a run killed with SIGKILL after its first batch, plus
a half-written last line, is resumed and only the missing answers are generated."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor_repro import pipeline
from advisor_repro.config import load_config
from advisor_repro.errors import ConfigError
from advisor_repro.evaluation import answers
from advisor_repro.files import read_json, read_jsonl, write_json, write_jsonl
from advisor_repro.stages import generate

PROMPTS = [
    {"sample_id": 0, "dataset_index": 4, "prompt": "Can I study law at Veldmark University?",
     "reference": "Veldmark has no law school."},
    {"sample_id": 1, "dataset_index": 9, "prompt": "What is the application deadline?",
     "reference": "The deadline is 15 March."},
    {"sample_id": 2, "dataset_index": 1, "prompt": "Is there housing for first-year students?",
     "reference": "Yes, halls of residence guarantee a room in year one."},
]
CAPS = [4, 8]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def make_run(tmp_path: Path, adapter: Path | None, *extra: str):
    """A run directory with the prompts and the preflight decision; the adapter either copied
    to train-2/adapter (and the handoff bundle, which the stage also declares), or given as a
    path (`generate.adapter`)."""
    run = tmp_path / "run"
    write_jsonl(run / "data" / "eval_prompts.jsonl", PROMPTS)
    write_json(run / "preflight" / "decision.json", {"device": "cpu", "dtype": "fp32"})
    overrides = [f"generate.caps={CAPS}", "generate.batch_size=2", "judge.cap=4", *extra]
    if adapter is not None:
        overrides.append(f"generate.adapter='{adapter}'")
    return run, load_config("smoke", overrides), overrides


def in_run(run: Path, adapter: Path) -> None:
    shutil.copytree(adapter, run / "train-2" / "adapter")
    shutil.copytree(adapter, run / "handoff" / "bundle")


def keys(rows):
    return [(r["sample_id"], r["model"], r["cap"]) for r in rows]


@pytest.fixture(scope="module")
def generated(smoke_adapter, tmp_path_factory):
    run, cfg, _ = make_run(tmp_path_factory.mktemp("gen"), None)
    in_run(run, smoke_adapter[0])
    what, result = pipeline.run_stage(generate.STAGE, cfg, run, log=lambda m: None)
    return run, cfg, what, result


def test_one_line_per_prompt_model_and_cap_with_real_text(generated):
    run, _, what, result = generated
    rows = read_jsonl(run / "generate" / "answers.jsonl")
    assert what == "ran" and len(rows) == 12
    assert sorted(keys(rows)) == sorted(
        (p["sample_id"], m, c) for p in PROMPTS for m in ("base", "ft") for c in CAPS
    )
    for r in rows:
        assert any(ch.isalpha() for ch in r["text"])  # real model text
        assert r["truncated"] == (r["new_tokens"] >= r["cap"]) and 1 <= r["new_tokens"] <= r["cap"]
        assert r["dataset_index"] == PROMPTS[r["sample_id"]]["dataset_index"]
        assert r["batch_size"] in (1, 2) and r["seconds"] > 0
    by = {k: r for k, r in zip(keys(rows), rows, strict=True)}
    for p in PROMPTS:  # the shorter cap is a prefix of the longer one
        for m in ("base", "ft"):
            short, long = by[(p["sample_id"], m, CAPS[0])], by[(p["sample_id"], m, CAPS[1])]
            assert long["text"].startswith(short["text"][: max(1, len(short["text"]) - 3)])
    assert any(by[(p["sample_id"], "base", 8)]["text"] != by[(p["sample_id"], "ft", 8)]["text"]
               for p in PROMPTS)  # the adapter changes the answers
    assert result.figures["answers"] == 12 and result.figures["quant"] == "none"


def test_summary_records_the_cpu_fp32_deviation_and_the_adapter(generated, smoke_adapter):
    run, *_ = generated
    s = read_json(run / "generate" / "summary.json")
    assert s["device"] == "cpu" and s["quant"] == "none" and s["compute_dtype"] == "float32"
    assert s["deviations"] == [answers.CPU_FP32_NOTE]
    assert s["adapter"]["option"] == "train-2" and s["shared_prefix"] is True
    assert s["adapter"]["path"] == "train-2/adapter"  # relative: no machine path in results
    assert s["generated_this_run"] == 12 and s["resumed_answers"] == 0
    assert set(s["per_model_this_run"]) == {"base", "ft"}
    assert answers.GenerateSummary.from_json(s).to_json() == s  # the record reads what it wrote
    rec = read_json(run / "generate" / "done.json")
    assert "answers.jsonl" in rec["outputs"] and rec["inputs"]["files"]["train-2/adapter"]


def test_rerun_skips_and_a_retrained_adapter_makes_it_stale(generated, smoke_adapter_r8):
    run, cfg, *_ = generated
    assert pipeline.run_stage(generate.STAGE, cfg, run, log=lambda m: None)[0] == "skipped"
    weights = run / "train-2" / "adapter" / "adapter_model.safetensors"
    before = weights.read_bytes()
    weights.write_bytes((smoke_adapter_r8[0] / "adapter_model.safetensors").read_bytes())
    try:
        st = pipeline.stage_state(generate.STAGE, cfg, run)
        assert st.state == "stale" and "train-2/adapter" in st.reason
    finally:
        weights.write_bytes(before)
    assert pipeline.stage_state(generate.STAGE, cfg, run).state == "done"


CHILD = """
import sys
from pathlib import Path
from advisor_repro import pipeline
from advisor_repro.config import load_config
from advisor_repro.errors import ConfigError
from advisor_repro.stages import generate
cfg = load_config("smoke", sys.argv[2:])
pipeline.run_stage(generate.STAGE, cfg, Path(sys.argv[1]), log=lambda m: None)
"""


def test_killed_run_resumes_at_the_next_prompt(tmp_path, smoke_adapter, generated):
    run, cfg, overrides = make_run(tmp_path, smoke_adapter[0], "generate.batch_size=1")
    answers = run / "generate" / "answers.jsonl"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(run), *overrides],
                             stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and child.poll() is None:
        if answers.is_file() and answers.read_text().count("\n") >= 2:  # first batch flushed
            os.kill(child.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the child finished before it could be killed"
    assert (run / "generate" / "started.json").is_file()
    assert not (run / "generate" / "done.json").exists()
    kept = answers.read_text().splitlines(keepends=True)
    kept = [line for line in kept if line.endswith("\n")]
    answers.write_text("".join(kept) + '{"sample_id": 9, "model": "ba')  # a half-written line
    assert pipeline.stage_state(generate.STAGE, cfg, run).state == "partial"
    assert pipeline.run_stage(generate.STAGE, cfg, run, log=lambda m: None)[0] == "ran"
    lines = answers.read_text().splitlines(keepends=True)
    assert lines[: len(kept)] == kept  # finished answers were not generated again
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 12 and len(set(keys(rows))) == 12
    s = read_json(run / "generate" / "summary.json")
    assert s["resumed_answers"] == len(kept) and s["generated_this_run"] == 12 - len(kept)
    assert s["dropped_partial_bytes"] == len('{"sample_id": 9, "model": "ba')
    # batch size 1 vs 2 changes no greedy answer: the resumed run equals the uninterrupted one
    full = {k: r["text"] for k, r in zip(keys(rows), rows, strict=True)}
    ref_rows = read_jsonl(generated[0] / "generate" / "answers.jsonl")
    assert full == {k: r["text"] for k, r in zip(keys(ref_rows), ref_rows, strict=True)}


def test_merged_variant_answers_like_the_adapter(tmp_path, smoke_adapter, generated):
    run, cfg, _ = make_run(tmp_path, smoke_adapter[0], "generate.ft_variant='merged'")
    write_jsonl(run / "generate" / "answers.jsonl",  # base answers already there: ft only
                [r for r in read_jsonl(generated[0] / "generate" / "answers.jsonl")
                 if r["model"] == "base"])
    write_json(run / "generate" / "started.json",
               {"inputs": pipeline.input_fingerprint(generate.STAGE, cfg, run)})
    pipeline.run_stage(generate.STAGE, cfg, run, log=lambda m: None)
    merged = {k: r["text"] for r in read_jsonl(run / "generate" / "answers.jsonl")
              for k in [(r["sample_id"], r["model"], r["cap"])]}
    adapter = {k: r["text"] for r in read_jsonl(generated[0] / "generate" / "answers.jsonl")
               for k in [(r["sample_id"], r["model"], r["cap"])]}
    assert merged == adapter
    assert not (run / "generate" / "partial").exists()  # the merged weights are removed


def test_a_path_that_is_not_an_adapter_is_refused(tmp_path):
    run, cfg, _ = make_run(tmp_path, tmp_path)

    with pytest.raises(ConfigError, match="not a PEFT adapter folder"):
        pipeline.run_stage(generate.STAGE, cfg, run, log=lambda m: None)


@pytest.mark.parametrize("setting,decision,want", [
    ("auto", {"device": "cuda", "backend": "unsloth"}, "static"),   # T4, A100, H100
    ("auto", {"device": "cuda", "backend": "hf"}, "dynamic"),       # P100: no Triton
    ("auto", {"device": "cpu", "backend": "hf"}, "dynamic"),
    ("static", {"device": "cpu", "backend": "hf"}, "static"),       # asked for: kept
    ("dynamic", {"device": "cuda", "backend": "unsloth"}, "dynamic"),
])
def test_kv_cache_choice(setting, decision, want):
    from advisor_repro.config import load_config
    from advisor_repro.evaluation.answers import kv_cache

    cfg = load_config("paper", [f"generate.kv_cache='{setting}'"])
    assert kv_cache(cfg, decision["device"], decision.get("backend")) == want
