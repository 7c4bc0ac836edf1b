"""Run directory contract: completion records, skip-if-done, staleness, resume, locking."""

import dataclasses
import os
import subprocess
import sys

import pytest

from advisor_repro import pipeline
from advisor_repro.config import load_config
from advisor_repro.errors import BusyError, ConfigError, StageInputError, UnwritableError
from advisor_repro.files import hash_tree, read_json, write_json
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


def test_missing_input_names_the_stage_to_run_and_writes_nothing(tmp_path):
    calls: list[str] = []
    stages, cfg = _make_stages(calls), load_config("smoke")
    _run_all(stages, cfg, tmp_path)
    (tmp_path / "first" / "numbers.json").unlink()
    before = hash_tree(tmp_path)
    assert pipeline.stage_state(stages[1], cfg, tmp_path).reason == "an input is missing"
    with pytest.raises(StageInputError) as err:
        pipeline.run_stage(stages[1], cfg, tmp_path, log=lambda m: None)
    assert "first/numbers.json" in err.value.problem and "nothing was changed" in err.value.problem
    assert err.value.fix == f"run the earlier stage first: repro first --run-dir {tmp_path}"
    # refused before the folder was touched: its old result is still there, byte for byte
    assert hash_tree(tmp_path) == before and calls == ["first", "second"]
    assert read_json(tmp_path / "second" / "sum.json") == 108


def test_a_stage_check_refuses_before_the_folder_is_touched(tmp_path):
    calls: list[str] = []
    first, _ = _make_stages(calls)

    def check(cfg, ctx):
        if cfg.data.eval_prompts > 10:
            raise ConfigError("data.eval_prompts > 10", "lower it")

    checked = dataclasses.replace(first, check=check)
    pipeline.run_stage(checked, load_config("smoke"), tmp_path, log=lambda m: None)
    before = hash_tree(tmp_path)
    with pytest.raises(ConfigError):
        pipeline.run_stage(checked, load_config("smoke", ["data.eval_prompts=20"]), tmp_path,
                           log=lambda m: None)
    assert hash_tree(tmp_path) == before and calls == ["first"]


def test_imported_stage_is_kept_unless_forced(tmp_path):
    calls: list[str] = []
    stages, cfg = _make_stages(calls), load_config("smoke")
    (tmp_path / "first").mkdir()
    write_json(tmp_path / "first" / "numbers.json", [1, 2])
    src = [{"kind": "judge", "file": "judge_scores.csv", "sha256": "ab" * 32}]
    write_json(tmp_path / "first" / "imported.json",
               {"files": src, "outputs": pipeline.output_hashes(tmp_path / "first")})
    st = pipeline.stage_state(stages[0], cfg, tmp_path)
    assert st.state == "imported" and st.sources == src
    assert st.reason == "from judge_scores.csv sha256 " + "ab" * 6
    lines: list[str] = []
    before = hash_tree(tmp_path / "first")
    assert pipeline.run_stage(stages[0], cfg, tmp_path, log=lines.append)[0] == "imported"
    assert "--force first" in lines[0] and "judge_scores.csv" in lines[0]
    assert hash_tree(tmp_path / "first") == before and calls == []
    # the stage after it reads the imported file as a finished one
    assert pipeline.run_stage(stages[1], cfg, tmp_path, log=lines.append)[0] == "ran"
    assert read_json(tmp_path / "second" / "sum.json") == 3
    # an edited imported file is said, but the stage stays imported (never silently rerun)
    write_json(tmp_path / "first" / "numbers.json", [5])
    st = pipeline.stage_state(stages[0], cfg, tmp_path)
    assert st.state == "imported" and "files differ from the import" in st.reason
    assert pipeline.run_stage(stages[0], cfg, tmp_path, force=True, log=lines.append)[0] == "ran"
    assert not (tmp_path / "first" / "imported.json").exists() and calls == ["second", "first"]
    assert pipeline.stage_state(stages[0], cfg, tmp_path).state == "done"


def test_missing_input_from_an_imported_stage_says_how_to_compute_it(tmp_path):
    stages = _make_stages([])
    (tmp_path / "first").mkdir()
    write_json(tmp_path / "first" / "imported.json", {"files": []})
    with pytest.raises(StageInputError) as err:
        pipeline.run_stage(stages[1], load_config("smoke"), tmp_path, log=lambda m: None)
    assert "first/ holds files imported from the paper's release" in err.value.fix
    assert f"repro first --force --run-dir {tmp_path}" in err.value.fix


def test_second_process_on_the_same_run_dir_is_refused(tmp_path):
    with pipeline.locked(tmp_path), pytest.raises(BusyError) as err, pipeline.locked(tmp_path):
        pass
    assert f"another repro process (pid {os.getpid()}) is using {tmp_path}" in err.value.problem
    assert (tmp_path / ".lock").read_text() == ""  # a clean release leaves no holder behind


def test_lock_left_by_a_dead_process_is_taken_over_and_said(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / ".lock").write_text(f"{dead}\n")  # what a kill -9 leaves
    lines: list[str] = []
    with pipeline.locked(tmp_path, log=lines.append):
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
    assert lines == [f"lock of {tmp_path}: taken over from pid {dead}, which ended without "
                     "releasing it (killed); its finished stages are kept"]


def test_temp_files_of_a_killed_write_are_removed_once_the_lock_is_taken(tmp_path):
    # what a kill between an atomic writer's temp file and its rename leaves (crash sweep)
    (tmp_path / "judge" / "cache").mkdir(parents=True)
    (tmp_path / "judge" / "cache" / ".ab12.json.x1y2.tmp").write_text("{")
    (tmp_path / ".manifest.json.q9.tmp").write_text("{")
    bundle = tmp_path / "handoff" / ".bundle.k3.tmp"
    bundle.mkdir(parents=True)
    (bundle / "adapter_model.safetensors").write_bytes(b"half")
    (tmp_path / "judge" / "notes.tmp").write_text("not a temp file of ours: kept")
    lines: list[str] = []
    with pipeline.locked(tmp_path, log=lines.append):
        pass
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        ".lock", "handoff", "judge", "judge/cache", "judge/notes.tmp"]
    assert lines == ["removed 3 temporary file(s) left by a killed write: .manifest.json.q9.tmp, "
                     "handoff/.bundle.k3.tmp, judge/cache/.ab12.json.x1y2.tmp"]


def test_a_kill_between_the_record_and_started_json_leaves_nothing_behind(tmp_path):
    calls: list[str] = []
    stages, cfg = _make_stages(calls), load_config("smoke")
    _run_all(stages, cfg, tmp_path)
    # the record is in place, started.json not yet removed: the stage is done, and the next
    # run must not leave the marker of an interrupted stage lying beside a finished one
    pipeline.write_json(tmp_path / "first" / "started.json",
                        {"inputs": pipeline.input_fingerprint(stages[0], cfg, tmp_path)})
    assert pipeline.stage_state(stages[0], cfg, tmp_path).state == "done"
    assert _run_all(stages, cfg, tmp_path) == ["skipped", "skipped"]
    assert not (tmp_path / "first" / "started.json").exists()
    assert calls == ["first", "second"]


def test_run_dir_that_cannot_be_created_is_refused_with_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UnwritableError) as err, pipeline.locked(blocker / "run"):
        pass
    assert str(blocker / "run") in err.value.problem and "--run-dir" in err.value.fix


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
