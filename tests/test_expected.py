"""Expected ranges: the files' schema and coverage of PAPER.md, references, PASS/FAIL/SKIP."""

import random

import pytest

from advisor_repro.config import load_config
from advisor_repro.errors import ConfigError
from advisor_repro.expected import (
    EXPECTED_DIR,
    FAIL,
    PASS,
    SKIP,
    RunFiles,
    evaluate,
    load_expected,
    range_text,
)
from advisor_repro.files import write_json, write_jsonl
from advisor_repro.stages.verify import RUN_FILES

# Every number of PAPER.md that a run produces (tables and text), as the `paper` value of a check.
# fmt: off
PAPER_NUMBERS = [
    2274, 402, 50, 41943040, 284, 142, 426, 9, 5,  # data, LoRA, steps, warmup
    1.0125, 0.4787, 0.4109, 0.4343, 0.3405, 0.2963, 0.52, 20845, 19578,  # losses, wall-clock
    0.96, 0.24, 0.20, 100,  # truncation, answers per cap
    0.0981, 0.1611, 0.0631, 0.0473, 0.0785, 0.1937, 0.2125, 0.0188, 0.0098, 0.0284,  # 512
    5.71, 9.05, 3.34,
    0.0948, 0.1581, 0.0634, 0.0477, 0.0774, 0.1774, 0.1970, 0.0196, 0.0112, 0.0282,  # 256
    2.60, 4.09, 1.49,
    2.14, 0.53, 1.74, 0.69, -0.40, -0.62, -0.18, 0.49, 1.82, 0.59, -0.32, -0.52, -0.12,  # judge
    23, 9, 18, 9.3, 0.0095, 16, 2,  # preferences, test, divergent prompts
    4, 0, 1, 40, 0.275, 0.40,  # audits
    1.0, 0.5115, 0.0777, 0.2873, 0.6969, 0.0054, 0.1111, 5.19, 0.98, 6,  # Table 2, turns
]
# fmt: on


def test_expected_files_load_and_cover_the_paper():
    paper = load_expected("paper", RUN_FILES)
    smoke = load_expected("smoke", RUN_FILES)
    assert len(paper) > 100 and len(smoke) >= 15
    values = [c.paper for c in paper if isinstance(c.paper, int | float)]
    missing = [n for n in PAPER_NUMBERS if not any(abs(v - n) < 1e-9 for v in values)]
    assert missing == []
    assert all(c.where and c.paper is not None and c.reason for c in paper)
    assert {c.cls for c in paper} == {"exact", "structural", "rerun", "budget"}
    # the direction claims are required: FT above base on BERTScore, base preferred by the judge
    required = {c.id for c in paper if c.required}
    assert {
        "metrics.256.bertscore_f1.delta",
        "metrics.512.bertscore_f1.delta",
        "judge.preference.base_over_ft",
        "judge.domain.delta",
    } <= required


def test_paper_draw_in_expected_file_is_the_rule():
    idx = list(range(402))
    random.Random(42).shuffle(idx)
    draw = next(c for c in load_expected("paper") if c.id == "data.eval_draw")
    assert draw.bounds["equals"] == idx[:50]


def test_condition_keys_and_config_bounds_name_real_config_values():
    cfg = load_config("paper").to_dict()
    for name in ("paper", "smoke", "rehearsal"):
        for c in load_expected(name):
            keys = [k for k in (*c.when, *c.when_not) if ":" not in k]
            keys += [b.removeprefix("config:") for b in c.bounds.values()
                     if isinstance(b, str) and b.startswith("config:")]  # fmt: skip
            for key in keys:
                node = cfg
                for part in key.split("."):
                    assert isinstance(node, dict) and part in node, f"{name} {c.id}: {key}"
                    node = node[part]


def test_bad_entries_are_refused_with_the_entry_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[check]]\nid = "x"\nread = "metrics/summary.json:a"\nclass = "rerun"\n'
        'reason = "r"\nmaxx = 1\n'
    )
    with pytest.raises(ConfigError, match=r"'x'.*unknown key\(s\) maxx"):
        load_expected(str(bad))
    bad.write_text(
        '[[check]]\nid = "x"\nread = "secret/file.json:a"\nclass = "rerun"\nreason = "r"\nmax = 1\n'
    )
    with pytest.raises(
        ConfigError, match=r"reads secret/file\.json, which verify does not declare"
    ):
        load_expected(str(bad), RUN_FILES)
    bad.write_text(
        '[[check]]\nid = "x"\nread = "a/b.json:c|median"\nclass = "rerun"\nreason = "r"\nmax = 1\n'
    )
    with pytest.raises(ConfigError, match="reducer 'median' is unknown"):
        load_expected(str(bad))


def _check(tmp_path, body: str):
    path = tmp_path / "e.toml"
    path.write_text('[[check]]\nid = "c"\nclass = "rerun"\nreason = "r"\n' + body)
    return load_expected(str(path))[0]


def test_references_filters_and_reducers(tmp_path):
    rows = [
        {"model": m, "cap": c, "truncated": t, "loss": x}
        for (m, c, t, x) in [
            ("base", 256, True, 3.0),
            ("ft", 256, False, 1.0),
            ("base", 256, False, 2.0),
            ("base", 512, True, None),
        ]
    ]
    write_jsonl(tmp_path / "generate/answers.jsonl", rows)
    write_json(tmp_path / "metrics/summary.json", {"256": {"x": {"ci95": [0.1, 0.2]}}})
    run = RunFiles(tmp_path)
    assert run.value("generate/answers.jsonl:*[model=base,cap=256].truncated|mean") == 0.5
    assert run.value("generate/answers.jsonl:*|count") == 4
    assert run.value("generate/answers.jsonl:*.loss|last") == 2.0  # None values are skipped
    assert run.value("generate/answers.jsonl:*.loss|argmin") == 1
    assert run.value("generate/answers.jsonl:*.model|distinct") == 2
    assert run.value("generate/answers.jsonl:-1.cap") == 512
    assert run.value("metrics/summary.json:256.x.ci95.1") == 0.2


def test_pass_fail_skip(tmp_path):
    write_json(tmp_path / "train-1/summary.json", {"a": 0.09485, "b": 2, "steps": 284})
    run, cfg = RunFiles(tmp_path), load_config("paper").to_dict()

    def status(body):
        out = evaluate(_check(tmp_path, body), run, cfg)
        return out.status, out.why

    assert status('read = "train-1/summary.json:a"\nequals = 0.0948\ntol = 0.00005\n')[0] == PASS
    st, why = status('read = "train-1/summary.json:a"\nequals = 0.0948\ntol = 0.00001\n')
    assert st == FAIL and why == "differs from 0.0948"
    assert status('read = "train-1/summary.json:b"\ngt = 0\nlt = 3\n')[0] == PASS
    assert (
        status('read = "train-1/summary.json:steps"\nmax = "config:data.expected_train"\n')[0]
        == PASS
    )
    st, why = status('read = "train-1/summary.json:steps"\nequals = "config:data.expected_test"\n')
    assert st == FAIL and why == "differs from 402"
    st, why = status('read = "train-1/summary.json:b"\nlt = "train-1/summary.json:b"\n')
    assert st == FAIL and why == "not below 2"
    assert status('read = "train-2/summary.json:b"\nmax = 1\n') == (
        SKIP,
        "stage not run (train-2/summary.json is absent)",
    )
    assert status('read = "train-1/summary.json:zz"\nmax = 1\n') == (
        SKIP,
        "no 'zz' in train-1/summary.json:zz",
    )
    st, why = status(
        'read = "train-1/summary.json:b"\nmax = 9\nwhen = { "judge.backend" = '
        '"local" }\nwhen_reason = "judge backend differs from the paper\'s"\n'
    )
    assert st == SKIP and why == (
        "judge backend differs from the paper's (judge.backend is 'anthropic', needs 'local')"
    )
    assert status(
        'read = "train-1/summary.json:b"\nmax = 9\nwhen_not = { '
        '"train-1/summary.json:steps" = 284 }\n'
    ) == (SKIP, "train-1/summary.json:steps is 284")
    write_json(tmp_path / "train-2/started.json", {})
    write_json(tmp_path / "train-2/summary.json", {"b": 0})
    assert status('read = "train-2/summary.json:b"\nmax = 1\n') == (
        SKIP,
        "stage train-2 did not finish",
    )


def test_range_text():
    checks = {c.id: c for c in load_expected("paper")}
    assert range_text(checks["train1.loss_start"]) == "[0.85, 1.2]"
    assert range_text(checks["table2.max_sim_mean"]) == "= 0.5115 ± 5e-05"
    assert range_text(checks["metrics.256.bertscore_f1.delta"]) == "> 0"
    assert range_text(checks["train1.peak_reserved"]) == "≤ 14.74"


def test_every_expected_file_belongs_to_a_profile_and_says_how_to_run_it():
    from advisor_repro.config import available_profiles

    names = sorted(p.stem for p in EXPECTED_DIR.glob("*.toml"))
    assert names == available_profiles()  # `repro verify` finds one for every profile
    for name in names:
        head = "".join((EXPECTED_DIR / f"{name}.toml").read_text().splitlines()[:5])
        assert f"repro all --profile {name}" in head
        assert load_expected(name, RUN_FILES)
