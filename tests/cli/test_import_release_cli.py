"""`repro import-release` through the real CLI: the run directory it leaves, its manifest, the
exit codes of its refusals, and `repro status` / `repro metrics` on the result
(imported: kept)."""

import csv

import release_files as rf
from advisor_repro.cli import main
from advisor_repro.files import read_json


def test_import_then_status_and_metrics_see_finished_stages(tmp_path, capsys):
    folder, run = rf.make(tmp_path / "released"), tmp_path / "run"
    assert main(["import-release", str(folder), "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "bertscore     c.txt" in out and "ignored       figure.png (not text)" in out
    manifest = read_json(run / "manifest.json")
    assert manifest["profile"] == "paper"
    assert "judge.backend='replay'" in manifest["overrides"]
    assert f"judge.replay_file='{(folder / 'b.csv').resolve()}'" in manifest["overrides"]
    assert manifest["release"]["cap"] == rf.CAP and len(manifest["release"]["files"]) == 5
    assert main(["status", "--run-dir", str(run)]) == 0
    status = capsys.readouterr().out
    assert "metrics         imported" in status and "c.txt sha256 " in status
    assert main(["metrics", "--run-dir", str(run)]) == 0
    assert "[metrics] imported (from " in capsys.readouterr().out


def test_malformed_file_exits_3_naming_file_row_and_column(tmp_path, capsys):
    folder = rf.make(tmp_path / "released")
    path = folder / "b.csv"
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    rows[1]["help_b"] = "three"
    rf.write_csv(path, rf.JUDGE_HEADER, rows)
    assert main(["import-release", str(folder), "--run-dir", str(tmp_path / "run")]) == 3
    assert "b.csv: row 2 (line 3), column help_b: 'three' is not an integer" in (
        capsys.readouterr().err)


def test_second_import_needs_force_and_a_missing_folder_is_refused(tmp_path, capsys):
    folder, run = rf.make(tmp_path / "released"), tmp_path / "run"
    assert main(["import-release", str(folder), "--run-dir", str(run)]) == 0
    assert main(["import-release", str(folder), "--run-dir", str(run)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["import-release", str(folder), "--run-dir", str(run), "--force"]) == 0
    assert main(["import-release", str(tmp_path / "nope"), "--run-dir", str(run)]) == 2
