"""import-release: a made-up release folder (tests/release_files.py) goes into a run directory;
means and CIs are checked against independent computations; malformed files are refused with
the file, row and column named."""

import csv
import json
import random
import shutil

import numpy as np
import pytest

import release_files as rf
from advisor_repro import pipeline
from advisor_repro.config import load_config
from advisor_repro.errors import ConfigError, DataError
from advisor_repro.files import read_json, read_jsonl
from advisor_repro.release.importer import import_release
from advisor_repro.release.reader import read_release
from advisor_repro.stages import metrics as metrics_stage


@pytest.fixture
def folder(tmp_path):
    return rf.make(tmp_path / "released")


@pytest.fixture
def imported(folder, tmp_path):
    run = tmp_path / "run"
    cfg = load_config("paper")
    return run, cfg, import_release(folder, run, cfg)


def test_files_are_recognised_by_content_not_name(folder):
    rel = read_release(folder)
    assert rel.prompts.path.name == "a.csv" and rel.judge.path.name == "b.csv"
    assert rel.bertscore_path.name == "c.txt"
    assert {r: t.path.name for r, t in rel.outputs.items()} == {
        "base": "base_model_outputs.csv", "ft": "lora_model_outputs.csv"}
    assert sorted(rel.ignored) == ["README.md (not a release format)", "figure.png (not text)"]


def test_prompts_and_answers_are_written_as_the_stages_write_them(imported):
    run, _, done = imported
    assert done.cap == rf.CAP and done.prompts == rf.N
    prompts = read_jsonl(run / "data" / "eval_prompts.jsonl")
    assert prompts == [{**p, "reference": None} for p in rf.prompts()]
    answers = read_jsonl(run / "generate" / "answers.jsonl")
    assert len(answers) == 2 * rf.N
    for model, label in (("base", "base"), ("ft", "lora")):
        got = [a for a in answers if a["model"] == model]
        for a, o in zip(got, rf.outputs(label), strict=True):
            assert a["text"] == o["response"] and a["cap"] == rf.CAP
            assert a["new_tokens"] == o["response_token_count"]
            assert a["truncated"] is o["was_truncated"] and a["seconds"] == o["generation_time_sec"]


def test_bertscore_means_and_ci_match_an_independent_computation(imported):
    run, _, _ = imported
    raw = rf.bertscore()
    base, ft = np.array(raw["f1_per_item_base"]), np.array(raw["f1_per_item_lora"])
    deltas = ft - base
    rng = np.random.default_rng(42)  # the paper: 1,000 resamples, 2.5 / 97.5 percentiles
    boot = deltas[rng.integers(0, len(deltas), size=(1000, len(deltas)))].mean(axis=1)
    summary = read_json(run / "metrics" / "summary.json")
    f1 = summary[str(rf.CAP)]["bertscore_f1"]
    assert summary["origin"] == "release" and summary["caps"] == [rf.CAP]
    assert f1["base"] == pytest.approx(base.mean(), abs=1e-12)
    assert f1["ft"] == pytest.approx(ft.mean(), abs=1e-12)
    assert f1["delta"] == pytest.approx(deltas.mean(), abs=1e-12)
    assert (f1["ci_low"], f1["ci_high"]) == pytest.approx(
        tuple(np.percentile(boot, [2.5, 97.5])), abs=1e-12)
    p = summary[str(rf.CAP)]["bertscore_p"]
    assert (p["base"], p["ft"]) == (0.2072, 0.2690) and p["ci_low"] is None
    trunc = summary[str(rf.CAP)]["truncation_rate"]
    assert trunc["base"] == np.mean([o["was_truncated"] for o in rf.outputs("base")])
    per_item = read_jsonl(run / "metrics" / "per_item.jsonl")
    assert [r["sample_id"] for r in per_item if r["model"] == "ft"] == list(range(1, rf.N + 1))


def test_judge_verdicts_and_the_reconstructed_slot_mapping(imported):
    run, _, _ = imported
    rng = random.Random(42)  # the author's rule, one draw per prompt in order
    expected = {str(i + 1): "A" if rng.random() < 0.5 else "B" for i in range(rf.N)}
    assert read_json(run / "judge" / "mapping.json")["base_slot"] == expected
    verdicts = read_jsonl(run / "judge" / "verdicts.jsonl")
    assert [v["base_slot"] for v in verdicts] == list(expected.values())
    for v, j in zip(verdicts, rf.judge(), strict=True):
        assert {k: v[k] for k in j} == j and v["pass"] == "primary" and v["status"] == "ok"
    summary = read_json(run / "judge" / "summary.json")
    assert summary["primary"]["n_judged"] == rf.N
    base_domain = [j[f"domain_{'a' if expected[str(j['sample_id'])] == 'A' else 'b'}"]
                   for j in rf.judge()]
    assert summary["primary"]["scores"]["domain"]["base"]["mean"] == pytest.approx(
        np.mean(base_domain))


def test_completion_records_make_metrics_an_imported_stage(imported):
    run, cfg, _ = imported
    kinds = ["prompts", "outputs:base", "outputs:ft", "judge", "bertscore"]
    for stage in ("generate", "metrics", "judge"):
        rec = read_json(run / stage / "done.json")
        assert [f["kind"] for f in rec["imported"]] == kinds
    for stage in ("data", "generate", "metrics", "judge"):
        mark = read_json(run / stage / "imported.json")
        assert [f["kind"] for f in mark["files"]] == kinds
        assert mark["outputs"] == pipeline.output_hashes(run / stage)  # what was written
    st = pipeline.stage_state(metrics_stage.STAGE, cfg, run)
    assert st.state == "imported" and [f["kind"] for f in st.sources] == kinds
    assert not (run / "data" / "done.json").exists()  # the data stage did not run here


def test_a_second_import_needs_force(folder, imported):
    run, cfg, _ = imported
    with pytest.raises(ConfigError, match="already holds data, generate, metrics, judge"):
        import_release(folder, run, cfg)
    assert import_release(folder, run, cfg, force=True).cap == rf.CAP


def test_any_subset_imports(folder, tmp_path):
    for name in ("a.csv", "base_model_outputs.csv", "lora_model_outputs.csv", "b.csv"):
        (folder / name).unlink()
    run = tmp_path / "only-bertscore"
    done = import_release(folder, run, load_config("paper"))
    assert list(done.written) == ["metrics"] and done.prompts == 0
    assert sorted(p.name for p in run.iterdir()) == ["metrics"]


# ---- refusals ----------------------------------------------------------------------------------
def rewrite(path, edit):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    header, rows = edit(header, rows) or (header, rows)
    rf.write_csv(path, header, rows)


def drop_column(col):
    return lambda h, rows: ([c for c in h if c != col], [{k: v for k, v in r.items() if k != col}
                                                         for r in rows])


def set_cell(i, col, value):
    def edit(h, rows):
        rows[i][col] = value
    return edit


def test_missing_column_is_named(folder, tmp_path):
    rewrite(folder / "base_model_outputs.csv", drop_column("was_truncated"))
    with pytest.raises(DataError, match=r"base_model_outputs.csv: header \(line 1\): .*"
                                        r"column\(s\) was_truncated"):
        import_release(folder, tmp_path / "run", load_config("paper"))


@pytest.mark.parametrize(
    "file,edit,pattern",
    [
        ("b.csv", set_cell(2, "sample_id", "1"),
         r"b.csv: row 3 \(line 4\), column sample_id: sample_id 1 repeats row 1 \(line 2\)"),
        ("b.csv", set_cell(0, "preferred_slot", "c"),
         r"b.csv: row 1 \(line 2\), column preferred_slot: 'c' is not a, b or tie"),
        ("b.csv", set_cell(4, "domain_a", "4"),
         r"b.csv: row 5 \(line 6\), column domain_a: 4 is outside 0..3"),
        ("a.csv", set_cell(1, "dataset_index", "x"),
         r"a.csv: row 2 \(line 3\), column dataset_index: 'x' is not an integer"),
        # each output row spans two lines: row 3 starts on line 6
        ("lora_model_outputs.csv", set_cell(2, "dataset_index", "5"),
         r"lora_model_outputs.csv: row 3 \(line 6\), column dataset_index: 5 differs from "
         r"a.csv \(77\)"),
        ("lora_model_outputs.csv", set_cell(1, "generation_time_sec", "-1"),
         r"row 2 \(line 4\), column generation_time_sec: '-1' is not a finite number >= 0"),
        ("base_model_outputs.csv", set_cell(3, "was_truncated", "maybe"),
         r"row 4 \(line 8\), column was_truncated: 'maybe' is not True/False"),
    ],
)
def test_bad_cells_are_refused_with_file_row_and_column(folder, tmp_path, file, edit, pattern):
    rewrite(folder / file, edit)
    with pytest.raises(DataError, match=pattern):
        import_release(folder, tmp_path / "run", load_config("paper"))
    assert not (tmp_path / "run").exists()  # nothing written


def test_missing_sample_id_is_refused(folder, tmp_path):
    rewrite(folder / "lora_model_outputs.csv", lambda h, rows: (h, rows[:-1]))
    with pytest.raises(DataError, match=r"lora_model_outputs.csv: column sample_id: missing "
                                        r"sample_id 6 \(5 rows for 6 prompts in a.csv\)"):
        import_release(folder, tmp_path / "run", load_config("paper"))


def test_truncation_flag_that_contradicts_the_cap_is_refused(folder, tmp_path):
    rows = rf.outputs("base")
    short = next(i for i, r in enumerate(rows) if not r["was_truncated"])
    rewrite(folder / "base_model_outputs.csv", set_cell(short, "was_truncated", "True"))
    with pytest.raises(DataError, match=rf"row {short + 1} \(line {2 * short + 2}\), column "
                                        r"was_truncated: True disagrees with response_token"):
        import_release(folder, tmp_path / "run", load_config("paper"))


def test_mismatched_bertscore_counts_are_refused(folder, tmp_path):
    raw = rf.bertscore()
    raw["f1_per_item_lora"].pop()
    (folder / "c.txt").write_text(json.dumps(raw))
    with pytest.raises(DataError, match=r"c.txt: keys f1_per_item_base / f1_per_item_lora: "
                                        r"mismatched counts: 6 base values, 5 fine-tuned"):
        import_release(folder, tmp_path / "run", load_config("paper"))
    (folder / "c.txt").write_text(json.dumps(rf.bertscore(n=rf.N - 1)))
    with pytest.raises(DataError, match=r"mismatched counts: 5 per-item values for 6 prompts"):
        import_release(folder, tmp_path / "run", load_config("paper"))


def test_bertscore_file_without_a_key_is_refused(folder, tmp_path):
    raw = rf.bertscore()
    del raw["recall_mean_lora"]
    (folder / "c.txt").write_text(json.dumps(raw))
    with pytest.raises(DataError, match=r"c.txt: keys: the BERTScore file lacks recall_mean_lora"):
        import_release(folder, tmp_path / "run", load_config("paper"))


def test_non_utf8_bytes_are_refused_with_row_and_column(folder, tmp_path):
    path = folder / "base_model_outputs.csv"
    data = path.read_bytes()
    at = data.index(b"base answer to 2")
    path.write_bytes(data[:at] + b"\xff" + data[at + 1:])
    with pytest.raises(DataError, match=r"base_model_outputs.csv: row 2 \(line 4\), column "
                                        r"response: byte 0xff is not UTF-8"):
        import_release(folder, tmp_path / "run", load_config("paper"))


def test_output_files_that_do_not_say_which_model_need_base_and_ft(folder, tmp_path):
    shutil.move(folder / "base_model_outputs.csv", folder / "x.csv")
    shutil.move(folder / "lora_model_outputs.csv", folder / "y.csv")
    with pytest.raises(DataError, match="cannot tell whether these are the base or the fine"):
        import_release(folder, tmp_path / "run", load_config("paper"))
    done = import_release(folder, tmp_path / "run", load_config("paper"),
                          base=folder / "x.csv", ft=folder / "y.csv")
    kinds = {f["kind"]: f["file"] for f in done.files}
    assert kinds["outputs:base"] == "x.csv" and kinds["outputs:ft"] == "y.csv"


def test_two_folders_as_the_author_keeps_them_and_other_tables_ignored(folder, tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    for name in ("b.csv", "c.txt"):
        shutil.move(folder / name, docs / name)
    rf.write_csv(docs / "nlp-metrics-256.csv", ["sample_id", "dataset_index", "prompt",
                                                "rouge_l_f1_base"], [])
    shutil.copy(docs / "b.csv", docs / "sub" / "b.csv")  # subfolders are not read
    rel = read_release([folder, docs])
    assert [k for k, _ in rel.files()] == ["prompts", "outputs:base", "outputs:ft", "judge",
                                           "bertscore"]
    assert "nlp-metrics-256.csv (not a release format)" in rel.ignored
    done = import_release([folder, docs], tmp_path / "run", load_config("paper"))
    assert set(done.written) == {"generate", "metrics", "judge"}
