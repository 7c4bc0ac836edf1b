"""Scenario 8: `repro import-release` refuses malformed release files with exit 3, naming the
file, the row and the column, and writes nothing. (The function-level cases, one per kind of
bad cell, are in tests/test_release.py; this is the command end to end.)"""

from __future__ import annotations

import csv

import pytest

import release_files as rf
from advisor_repro.cli import main


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def missing_column(folder):
    rows = [{k: v for k, v in r.items() if k != "was_truncated"}
            for r in _rows(folder / "base_model_outputs.csv")]
    rf.write_csv(folder / "base_model_outputs.csv",
                 [c for c in rf.OUTPUT_HEADER if c != "was_truncated"], rows)


def duplicate_id(folder):
    rows = _rows(folder / "b.csv")
    rows[2]["sample_id"] = "1"
    rf.write_csv(folder / "b.csv", rf.JUDGE_HEADER, rows)


def wrong_count(folder):
    rf.write_csv(folder / "lora_model_outputs.csv", rf.OUTPUT_HEADER,
                 _rows(folder / "lora_model_outputs.csv")[:-1])


def non_utf8(folder):
    path = folder / "base_model_outputs.csv"
    data = path.read_bytes()
    at = data.index(b"base answer to 2")
    path.write_bytes(data[:at] + b"\xff" + data[at + 1:])


CASES = {
    "missing-column": (missing_column, "base_model_outputs.csv: header (line 1)",
                       "was_truncated"),
    "duplicate-id": (duplicate_id, "b.csv: row 3 (line 4), column sample_id",
                     "sample_id 1 repeats row 1 (line 2)"),
    "wrong-count": (wrong_count, "lora_model_outputs.csv: column sample_id",
                    "missing sample_id 6 (5 rows for 6 prompts in a.csv)"),
    "non-utf8": (non_utf8, "base_model_outputs.csv: row 2 (line 4), column response",
                 "byte 0xff is not UTF-8"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_release_file_is_refused_naming_file_row_and_column(case, tmp_path, capsys):
    edit, where, what = CASES[case]
    folder, run = rf.make(tmp_path / "released"), tmp_path / "run"
    edit(folder)
    assert main(["import-release", str(folder), "--run-dir", str(run)]) == 3
    err = capsys.readouterr().err
    assert where in err and what in err and "fix:" in err, err
    # refused before anything is written: at most the run directory's lock file exists
    assert [p.name for p in run.glob("*")] in ([], [".lock"])
