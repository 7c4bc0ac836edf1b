"""Run directory contract: completion records, skip-if-done, staleness, resume, locking."""

import pytest

from advisor_repro import pipeline
from advisor_repro.config import load_config
from advisor_repro.errors import BusyError, StageInputError
from advisor_repro.files import read_json, write_json
from advisor_repro.pipeline import Stage, StageResult


def _make_stages(calls: list[str]):
    """Two small real stages: `first` writes numbers from the config, `second` sums them."""

    def first(cfg, ctx):
        calls.append("first")
        partial = ctx.out / "partial.txt"
        seen = partial.read_text() if partial.exists() else ""
        partial.write_text(seen + "x")
        write_json(ctx.out / "numbers.json", [cfg.data.eval_prompts, cfg.data.smoke_train])
        return StageResult(figures={"resumed": bool(seen)})

    def second(cfg, ctx):
        calls.append("second")
        nums = read_json(ctx.input("first/numbers.json"))
        write_json(ctx.out / "sum.json", sum(nums))
        return StageResult(figures={"sum": sum(nums)})

    return (
        Stage("first", "writes numbers", first, config=("data",)),
        Stage("second", "sums them", second, needs=("first/numbers.json",)),
    )


def _run_all(stages, cfg, run_dir):
    return [pipeline.run_stage(s, cfg, run_dir, log=lambda m: None)[0] for s in stages]


def test_second_run_skips_everything(tmp_path):
    calls: list[str] = []
    stages, cfg = _make_stages(calls), load_config("smoke")
    assert _run_all(stages, cfg, tmp_path) == ["ran", "ran"]
    assert _run_all(stages, cfg, tmp_path) == ["skipped", "skipped"]
    assert calls == ["first", "second"]
    record = read_json(tmp_path / "second" / "done.json")
    assert record["figures"] == {"sum": 8 + 100}
    assert "sum.json" in record["outputs"] and "done.json" not in record["outputs"]


def test_changed_config_makes_dependents_stale(tmp_path):
    calls: list[str] = []
    stages = _make_stages(calls)
    _run_all(stages, load_config("smoke"), tmp_path)
    changed = load_config("smoke", ["data.eval_prompts=5"])
    st = pipeline.stage_state(stages[0], changed, tmp_path)
    assert st.state == "stale" and "config" in st.reason
    assert _run_all(stages, changed, tmp_path) == ["ran", "ran"]
    assert read_json(tmp_path / "second" / "sum.json") == 105


def test_unrelated_config_change_reruns_nothing(tmp_path):
    calls: list[str] = []
    stages = _make_stages(calls)
    _run_all(stages, load_config("smoke"), tmp_path)
    other = load_config("smoke", ["train.segment2.lr=1e-4"])
    assert _run_all(stages, other, tmp_path) == ["skipped", "skipped"]


def test_modified_output_is_detected_and_only_that_stage_reruns(tmp_path):
    calls: list[str] = []
    stages, cfg = _make_stages(calls), load_config("smoke")
    _run_all(stages, cfg, tmp_path)
    (tmp_path / "second" / "sum.json").write_text("999")
    assert pipeline.stage_state(stages[1], cfg, tmp_path).reason == "outputs modified or missing"
    assert _run_all(stages, cfg, tmp_path) == ["skipped", "ran"]
    assert read_json(tmp_path / "second" / "sum.json") == 108


def test_missing_record_means_partial_and_resumes_in_place(tmp_path):
    calls: list[str] = []
    stages, cfg = _make_stages(calls), load_config("smoke")
    _run_all(stages, cfg, tmp_path)
    (tmp_path / "first" / "done.json").unlink()
    pipeline.write_json(
        tmp_path / "first" / "started.json",
        {"inputs": pipeline.input_fingerprint(stages[0], cfg, tmp_path)},
    )
    assert pipeline.stage_state(stages[0], cfg, tmp_path).state == "partial"
    pipeline.run_stage(stages[0], cfg, tmp_path, log=lambda m: None)
    assert read_json(tmp_path / "first" / "done.json")["figures"] == {"resumed": True}
    # its outputs are byte-identical, so the dependent stage is still current
    assert pipeline.stage_state(stages[1], cfg, tmp_path).state == "done"


def test_stale_stage_starts_clean(tmp_path):
    calls: list[str] = []
    stages = _make_stages(calls)
    _run_all(stages, load_config("smoke"), tmp_path)
    pipeline.run_stage(
        stages[0], load_config("smoke", ["data.eval_prompts=3"]), tmp_path, log=lambda m: None
    )
    assert (tmp_path / "first" / "partial.txt").read_text() == "x"


def test_missing_input_names_the_stage_to_run(tmp_path):
    stages = _make_stages([])
    with pytest.raises(StageInputError) as err:
        pipeline.run_stage(stages[1], load_config("smoke"), tmp_path, log=lambda m: None)
    assert "first/numbers.json" in err.value.problem and "repro first" in err.value.fix
    assert (tmp_path / "second" / "failed.json").is_file()
    assert pipeline.stage_state(stages[1], load_config("smoke"), tmp_path).state == "failed"


def test_second_process_on_the_same_run_dir_is_refused(tmp_path):
    with pipeline.locked(tmp_path), pytest.raises(BusyError), pipeline.locked(tmp_path):
        pass


def test_registry_is_in_paper_order():
    names = [s.name for s in pipeline.stages()]
    assert names[:3] == ["preflight", "data", "audit-data"]


def test_failed_stage_resumes_and_stale_stage_keeps_its_cache(tmp_path):
    calls: list[str] = []
    stages, cfg = _make_stages(calls), load_config("smoke")
    _run_all(stages, cfg, tmp_path)
    cache = tmp_path / "first" / "cache"
    cache.mkdir()
    (cache / "verdict.json").write_text("{}")
    changed = load_config("smoke", ["data.eval_prompts=4"])
    pipeline.run_stage(stages[0], changed, tmp_path, log=lambda m: None)
    assert (cache / "verdict.json").is_file()  # keyed on its inputs: still valid
    assert (tmp_path / "first" / "partial.txt").read_text() == "x"  # outputs were cleared
    with pytest.raises(StageInputError):
        pipeline.run_stage(stages[1], cfg, tmp_path / "other", log=lambda m: None)
