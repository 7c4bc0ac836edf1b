"""Stage `data`: local sources, and the stage through the pipeline (the records' pure core is
tested in tests/data/test_records.py)."""

import json

import pytest

from advisor_repro import data
from advisor_repro.config import load_config
from advisor_repro.errors import DataError
from advisor_repro.smokedata import standin_dataset, write_splits


def conv(*turns):
    roles = ["human", "assistant"]
    return {"conversations": [{"from": roles[i % 2], "value": t} for i, t in enumerate(turns)]}


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_local_folder_source(tmp_path, fmt):
    splits = standin_dataset(seed=1, n_train=30, n_test=12)
    write_splits(splits, tmp_path, fmt)
    cfg = load_config("paper", [f"data.source='{tmp_path}'"])
    loaded, prov = data.load_splits(cfg.data)
    assert loaded == splits and prov["revision"] == "local"


def test_bad_json_line_names_file_and_line(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps(conv("q", "a")) + "\n{broken\n")
    (tmp_path / "test.jsonl").write_text(json.dumps(conv("q", "a")) + "\n")
    cfg = load_config("smoke", [f"data.source='{tmp_path}'"])
    with pytest.raises(DataError, match=r"train.jsonl:2 \(train\): not valid JSON"):
        data.load_splits(cfg.data)


def test_missing_split_is_refused(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps(conv("q", "a")) + "\n")
    cfg = load_config("smoke", [f"data.source='{tmp_path}'"])
    with pytest.raises(DataError, match="no 'test' split"):
        data.load_splits(cfg.data)


def test_fingerprint_changes_with_content():
    a = {"train": [conv("q", "a")], "test": []}
    b = {"train": [conv("q", "b")], "test": []}
    assert data.fingerprint(a)["train"]["sha256"] != data.fingerprint(b)["train"]["sha256"]
    assert data.fingerprint(a)["test"]["n"] == 0
