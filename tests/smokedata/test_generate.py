"""The bundled datasets: deterministic, in the paper's record format and shape, errors labelled."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest

from advisor_repro.errors import ConfigError
from advisor_repro.smokedata import handbook, smoke_dataset, standin_dataset, write_splits

PAPER_CLASSES = {
    "admission_requirement",
    "policy_eligibility",
    "nonexistent_programme",
    "invented_scholarship",
}


@pytest.fixture(scope="module")
def smoke() -> tuple[dict, list]:
    return smoke_dataset()


@pytest.fixture(scope="module")
def standin() -> dict:
    return standin_dataset()


def _records(splits: dict) -> list[dict]:
    return [r for records in splits.values() for r in records]


def _answers(splits: dict) -> list[str]:
    turns = [t for r in _records(splits) for t in r["conversations"]]
    return [t["value"] for t in turns if t["from"] == "assistant"]


def _check_shape(splits: dict) -> None:
    for record in _records(splits):
        assert list(record) == ["conversations"]
        turns = record["conversations"]
        assert 4 <= len(turns) <= 6
        for i, turn in enumerate(turns):
            assert turn["from"] == ("human", "assistant")[i % 2]
            assert isinstance(turn["value"], str) and turn["value"].strip()


# --- handbook ---


def test_handbook_is_fictional_and_complete() -> None:
    hb = handbook()
    assert hb["institution"]["fictional"] is True
    facts = hb["facts"]
    assert 12 <= len(facts) <= 16
    assert len({f["id"] for f in facts}) == len(facts)
    assert {f["error_class"] for f in facts} >= PAPER_CLASSES
    assert {f["error_class"] for f in facts} <= set(hb["error_classes"])
    for f in facts:
        assert f["topic"] and f["title"] and f["questions"] and "{value}" in f["statement"]
        assert 1 <= len(f["wrong_values"]) <= 2
        for wrong in f["wrong_values"]:
            # substring search must be able to tell a planted error from the truth
            assert wrong not in f["true_value"] and f["true_value"] not in wrong


def test_handbook_returns_a_fresh_copy() -> None:
    hb = handbook()
    hb["facts"].clear()
    assert handbook()["facts"]


# --- smoke dataset ---


def test_smoke_is_deterministic_per_seed(smoke: tuple) -> None:
    assert smoke_dataset(seed=42) == smoke
    assert smoke_dataset(seed=43) != smoke


def test_smoke_sizes_and_shape(smoke: tuple) -> None:
    splits, _ = smoke
    assert {k: len(v) for k, v in splits.items()} == {"train": 100, "test": 20}
    _check_shape(splits)
    assert 5 in {len(r["conversations"]) for r in splits["train"]}  # odd: ends on a human turn
    small, _ = smoke_dataset(n_train=7, n_test=3)
    assert (len(small["train"]), len(small["test"])) == (7, 3)


def test_smoke_has_no_duplicates_or_overlap(smoke: tuple) -> None:
    splits, _ = smoke
    train = {json.dumps(r, sort_keys=True) for r in splits["train"]}
    test = {json.dumps(r, sort_keys=True) for r in splits["test"]}
    assert len(train) == 100 and len(test) == 20
    assert not train & test
    test_questions = {r["conversations"][0]["value"] for r in splits["test"]}
    train_questions = {r["conversations"][0]["value"] for r in splits["train"]}
    assert test_questions - train_questions  # template reuse, but not a copy of train


def test_smoke_error_rate(smoke: tuple) -> None:
    splits, planted = smoke
    for split, records in splits.items():
        n_answers = len(_answers({split: records}))
        n_planted = sum(1 for p in planted if p["split"] == split)
        assert 0.2 <= n_planted / n_answers <= 0.4
    assert {p["error_class"] for p in planted} >= PAPER_CLASSES


def test_smoke_labels_point_at_the_error(smoke: tuple) -> None:
    splits, planted = smoke
    for label in planted:
        turn = splits[label["split"]][label["index"]]["conversations"][label["turn"]]
        assert turn["from"] == "assistant"
        assert label["claimed"] in turn["value"]
        assert label["true"] not in turn["value"]
    keys = [(p["split"], p["index"], p["turn"]) for p in planted]
    assert len(keys) == len(set(keys))


def test_smoke_every_wrong_answer_is_labelled(smoke: tuple) -> None:
    splits, planted = smoke
    wrong_values = [w for f in handbook()["facts"] for w in f["wrong_values"]]
    found = {
        (split, i, j)
        for split, records in splits.items()
        for i, record in enumerate(records)
        for j, turn in enumerate(record["conversations"])
        if turn["from"] == "assistant" and any(w in turn["value"] for w in wrong_values)
    }
    assert found == {(p["split"], p["index"], p["turn"]) for p in planted}


@pytest.mark.parametrize("rate, expected", [(0.0, 0), (1.0, None)])
def test_smoke_error_rate_extremes(rate: float, expected: int | None) -> None:
    splits, planted = smoke_dataset(n_train=10, n_test=5, error_rate=rate)
    assert len(planted) == (len(_answers(splits)) if expected is None else expected)


def test_smoke_rejects_bad_rate() -> None:
    with pytest.raises(ConfigError):
        smoke_dataset(error_rate=1.5)


# --- stand-in dataset ---


def test_standin_size_shape_and_speed(standin: dict) -> None:
    assert {k: len(v) for k, v in standin.items()} == {"train": 2274, "test": 402}
    _check_shape(standin)
    start = time.perf_counter()
    standin_dataset(seed=0)
    assert time.perf_counter() - start < 2.0


def test_standin_turn_statistics(standin: dict) -> None:
    turns = [len(r["conversations"]) for r in _records(standin)]
    assert 5.0 <= statistics.mean(turns) <= 5.4
    assert 0.9 <= statistics.stdev(turns) <= 1.05
    assert set(turns) <= {4, 5, 6}


def test_standin_answer_lengths(standin: dict) -> None:
    words = [len(a.split()) for a in _answers(standin)]
    assert min(words) >= 100 and max(words) <= 300
    assert statistics.stdev(words) > 20  # lengths vary
    questions = [
        len(t["value"].split())
        for r in _records(standin)
        for t in r["conversations"]
        if t["from"] == "human"
    ]
    assert max(questions) <= 40


def test_standin_is_deterministic_per_seed() -> None:
    small = standin_dataset(seed=3, n_train=30, n_test=5)
    assert standin_dataset(seed=3, n_train=30, n_test=5) == small
    assert standin_dataset(seed=4, n_train=30, n_test=5) != small


# --- writing ---


def test_write_splits_jsonl_round_trip(tmp_path: Path, smoke: tuple) -> None:
    splits, _ = smoke
    write_splits(splits, tmp_path)
    for name, records in splits.items():
        lines = (tmp_path / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == records


def test_write_splits_parquet_round_trip(tmp_path: Path, smoke: tuple) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    splits, _ = smoke
    write_splits({**splits, "empty": []}, tmp_path, fmt="parquet")
    for name, records in splits.items():
        assert pq.read_table(tmp_path / f"{name}.parquet").to_pylist() == records
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0


def test_write_splits_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        write_splits({"train": []}, tmp_path, fmt="csv")
