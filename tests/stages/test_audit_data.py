"""Stage `audit-data` on a dataset the data stage refuses: the audit reports the invalid rates
(as the author's evaluate_dataset.py), the data stage still refuses, and the two stages must
read the same records."""

import json

from advisor_repro.cli import main
from advisor_repro.files import read_json


def conv(*turns):
    roles = ["human", "assistant"]
    return {"conversations": [{"from": roles[i % 2], "value": t} for i, t in enumerate(turns)]}


def write(folder, train, test):
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_invalid_records_are_rates_in_the_audit_and_refused_by_the_data_stage(tmp_path, capsys):
    broken = {"conversations": [{"from": "human", "value": "q"}, {"from": "human", "value": "q"}]}
    train = [conv(f"question {i}", f"answer {i}") for i in range(3)] + [broken]
    write(tmp_path / "src", train, [conv("q", "a")] * 8)
    args = ["--set", f"data.source='{tmp_path / 'src'}'", "--run-dir", str(tmp_path / "run")]
    assert main(["data", *args]) == 3  # DataError: the training data stays refused
    assert "train[3]: turn 1 is from 'human'" in capsys.readouterr().err
    assert not (tmp_path / "run/data/train.jsonl").exists()  # only the failure record
    assert main(["audit-data", *args]) == 0
    table = read_json(tmp_path / "run/audit-data/table2.json")
    assert table["train"]["role_alternation_pass_rate"] == 3 / 4
    assert table["all"]["role_alternation_pass_rate"] == 11 / 12
    assert table["all"]["schema_pass_rate"] == 1.0
    assert "1 record(s) fail the schema or role-alternation check" in capsys.readouterr().out


def test_audit_refuses_records_other_than_the_data_stage_wrote(tmp_path, capsys):
    write(tmp_path / "src", [conv(f"q {i}", f"a {i}") for i in range(3)], [conv("q", "a")] * 8)
    args = ["--set", f"data.source='{tmp_path / 'src'}'", "--run-dir", str(tmp_path / "run")]
    assert main(["data", *args]) == 0
    # the source changes after the data stage ran: audit-data would audit other records
    write(tmp_path / "src", [conv("q 0", "a changed")], [conv("q", "a")] * 8)
    assert main(["audit-data", *args]) == 3
    assert "differs from the one the data stage wrote" in capsys.readouterr().err
    assert not (tmp_path / "run/audit-data/table2.json").exists()
