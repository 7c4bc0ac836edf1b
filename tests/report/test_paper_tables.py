"""The report's paper tables: the paper's released judge scores and BERTScore file, imported,
verified and reported, must come out exactly as the paper prints Table 4 and the 256-token
BERTScore row, beside the paper's column, with no absolute path in either file."""

import re
from pathlib import Path

import pytest

from advisor_repro.cli import main
from advisor_repro.config import load_config
from advisor_repro.files import read_json, write_json
from advisor_repro.report import claims, data_tables, eval_tables, rows
from advisor_repro.report.render import drop_paths
from advisor_repro.report.verify_record import VerifyRecord

RELEASED = Path(__file__).parent / "released"
# an absolute POSIX path of two or more parts, outside URLs and tags
ABSOLUTE = re.compile(r"(?<![\w:/.<>~&;-])/(?:[\w.@+=,()-]+/)+[\w.@+=,()-]+")


def md_verdict(md: str, label: str) -> str:
    """The verdict cell of row `label`, a note said once ("as above") read from the row it
    repeats."""
    rows = [[c.strip() for c in line.strip().strip("|").split(" | ")]
            for line in md.splitlines() if line.startswith("| ")]  # fmt: skip
    i = next(i for i, r in enumerate(rows) if r[0] == label)
    while rows[i][4] == "as above":
        i -= 1
    return rows[i][4]


def md_row(md: str, label: str) -> list[str]:
    """The cells of the Markdown table row whose first cell is `label`."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in the report")


@pytest.fixture
def released_run(tmp_path, capsys) -> Path:
    run = tmp_path / "imported-run"
    assert main(["import-release", str(RELEASED), "--run-dir", str(run)]) == 0
    return run


def test_imported_release_renders_table4_and_the_256_bertscore_row_as_printed(released_run):
    assert main(["verify", "--run-dir", str(released_run)]) == 15  # PARTIAL
    assert main(["report", "--run-dir", str(released_run)]) == 0
    md = (released_run / "report/report.md").read_text()
    html = (released_run / "report/report.html").read_text()
    table4 = {
        "domain accuracy, base": "2.14 ± 0.53",
        "domain accuracy, FT": "1.74 ± 0.69",
        "domain accuracy, FT - base [95% CI]": "-0.40 [-0.62, -0.18]",
        "helpfulness, base": "2.14 ± 0.49",
        "helpfulness, FT": "1.82 ± 0.59",
        "helpfulness, FT - base [95% CI]": "-0.32 [-0.52, -0.12]",
        "preferred: base": "23/50 (46%)",
        "preferred: FT": "9/50 (18%)",
        "ties": "18/50 (36%)",
        "McNemar-Bowker, 3-way preference": "chi2(2) = 9.3, p = 0.0095",
    }
    for label, printed in table4.items():
        cells = md_row(md, label)
        assert cells[1] == printed and cells[2] == printed, (label, cells)  # paper | this run
        assert cells[4].startswith("PASS"), (label, cells)
    bert = {"BERTScore F1, base": "0.0948", "BERTScore F1, FT": "0.1581",
            "BERTScore F1, FT - base [95% CI]": "+0.0634 [+0.0477, +0.0774]"}  # fmt: skip
    section = md.split("Reference metrics at 256 tokens")[1]
    for label, printed in bert.items():
        cells = md_row(section, label)
        assert cells[1:3] == [printed, printed] and cells[4] == "PASS", cells
    for text in (*table4.values(), *bert.values()):
        assert f"<td>{text}</td>" in html, text
    # a partial run: what the release cannot give says "not run", with the stage
    assert md_verdict(md, "other/general advising").startswith("not run: audit-data")
    assert md_verdict(md, "segment 1: wall-clock").startswith("not run: train-1")
    assert md_row(md, "segment 1: wall-clock")[4] == "as above"  # the note said once
    assert "not run: this run has no 512-token metrics (caps [256])" in md
    caution = md_row(md, claims.CLAIMS[1].text)
    assert caution[1].startswith("partly tested, 4 of 9 checks ran and passed") and \
        caution[1].endswith("(from the paper's released files: recomputed, not re-run)")
    # the manifest records the replay file by its absolute path; the report does not
    assert str(RELEASED) in read_json(released_run / "manifest.json")["overrides"][1]
    for text in (md, html):
        assert str(released_run.parent) not in text and str(RELEASED) not in text
        no_figures = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
        assert ABSOLUTE.findall(no_figures) == []


def test_without_verify_the_tables_still_render_and_say_so(released_run):
    assert main(["report", "--run-dir", str(released_run)]) == 0
    md = (released_run / "report/report.md").read_text()
    cells = md_row(md, "domain accuracy, FT - base [95% CI]")
    assert cells[1:3] == ["-0.40 [-0.62, -0.18]"] * 2
    assert md_verdict(md, "domain accuracy, FT - base [95% CI]") == "verify not run (repro verify)"


def test_bertscore_hash_names_the_model_not_its_folder():
    summary = {"bertscore": {"model": "roberta-large", "num_layers": 17,
                             "rescale_with_baseline": True,
                             "hash": "/home/me/.cache/models/roberta-large_L17_no-idf_"
                                     "version=0.3.12(hug_trans=5.17.0)-rescaled"}}  # fmt: skip
    text = eval_tables.bertscore_identity(summary)
    assert text.endswith("hash roberta-large_L17_no-idf_version=0.3.12(hug_trans=5.17.0)-rescaled")
    assert "/home" not in text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("base_folder: /root/.cache/advisor-repro/models/SmolLM2-135M",
         "base_folder: …/SmolLM2-135M"),
        ('"replay_file": "/tmp/x/released/b.csv"', '"replay_file": "…/b.csv"'),
        ("see https://example.org/a/b and repro/expected/paper.toml", None),  # URL, relative
        ("Assistant: ...</s>\n\n and tokens/s, 23/50 (46%), </td>", None),
        ("data:image/png;base64,iVBOR/abc+/def/ghi=", None),  # figures hold '/' in base64
    ],
)
def test_drop_paths(text, shown):
    assert drop_paths(text) == (shown if shown is not None else text)


def test_claims_follow_the_checks(tmp_path, capsys):
    from stages.conftest import write_paper_run

    run = write_paper_run(tmp_path / "run")
    assert main(["verify", "--profile", "paper", "--run-dir", str(run)]) == 15  # PARTIAL
    cfg = load_config("paper", [])
    record = VerifyRecord.from_json(read_json(run / "verify/verify.json"))
    verdicts = {c.id: claims.verdict(c, cfg, rows.Verdicts(record))[0] for c in claims.CLAIMS}
    assert verdicts["recipe"].startswith("tested and supported, 21 of 21 checks passed")
    assert verdicts["caution"].startswith("tested and supported")
    assert "train1.steps" in claims.verdict(claims.CLAIMS[0], cfg, rows.Verdicts(record))[2]
    # the judge prefers FT instead: a required check fails and the caution is contradicted
    judge = read_json(run / "judge/summary.json")
    counts = judge["primary"]["preference"]["counts"]
    counts["base"], counts["ft"] = 9, 23
    write_json(run / "judge/summary.json", judge)
    assert main(["verify", "--profile", "paper", "--run-dir", str(run)]) == 11
    record = VerifyRecord.from_json(read_json(run / "verify/verify.json"))
    text, cls, _ = claims.verdict(claims.CLAIMS[1], cfg, rows.Verdicts(record))
    assert cls == "FAIL" and text.startswith("contradicted, judge.preference.base_over_ft")
    # another judge: not tested, whatever the checks say
    local = load_config("paper", ["judge.backend='local'"])
    text, cls, _ = claims.verdict(claims.CLAIMS[1], local, rows.Verdicts(record))
    assert cls == "SKIP" and text.startswith("not tested (judge backend differs")


def test_table3_shows_the_resolved_recipe_and_the_phase_table_the_shape():
    cfg = load_config("paper", ["train.segment2.recipe='notebook'",
                                "train.report_to='tensorboard'"])
    t3 = {r.label: r for r in data_tables.table3_rows(cfg)}
    assert t3["learning rate"].value == "2e-4 / 1e-4"
    assert t3["warmup ratio"].value == "0.03 / 0.05"
    assert t3["logging (report_to)"].value == "tensorboard"
    assert t3["optimizer"].value == "adamw_8bit" and data_tables._same(t3["optimizer"])
    assert t3["mixed precision"].value == "auto (bf16 on sm >= 8, else fp16)"
    used = {r.label: r for r in data_tables.table3_rows(cfg, "fp16")}  # the dtype trained in
    assert used["mixed precision"].value == "fp16, as trained (train.precision = auto)"
    summary = {"shape": {"micro_batch": 2, "grad_accum": 8, "effective": 16},
               "optimizer_steps": 284, "epochs_done": 2, "plan": {"lr": 1e-4},
               "warmup_steps": 15, "process_seconds": 19578.4, "start_loss": 0.43431,
               "end_loss": 0.34049, "min_loss": 0.29631, "min_loss_step": 118,
               "memory_peak": {"nvml_used_gib": 11.2}}  # fmt: skip
    phase = {r.label: r.value for r in data_tables.phase_rows({"train-2": summary}, cfg)}
    assert phase["segment 2: micro-batch x grad-accum"] == "2 x 8 = 16"
    assert phase["segment 2: LR / warmup"] == "1e-4 / 15 steps"
    assert phase["segment 2: wall-clock"] == "5h26m18s"
    assert phase["segment 2: loss start -> end"] == "0.4343 -> 0.3405 (min 0.2963 at step 118)"
    assert phase["segment 2: GPU memory used"] == "11.20 GiB NVML peak"  # GiB, as measured
    assert phase["segment 1: micro-batch x grad-accum"] is None  # train-1 not run
    # beyond the paper (issue 19): the order and padding options are named beside the split
    faster = {**summary, "padding": {"step_order": "length", "pad_to_multiple_of": 64}}
    phase = {r.label: r.value for r in data_tables.phase_rows({"train-2": faster}, cfg)}
    assert phase["segment 2: micro-batch x grad-accum"] == (
        "2 x 8 = 16; each step's sequences cut into micro-batches by length; padded to a "
        "multiple of 64 tokens")
    packed = {**summary, "padding": {"step_order": "sampled", "padding_free": True}}
    phase = {r.label: r.value for r in data_tables.phase_rows({"train-2": packed}, cfg)}
    assert phase["segment 2: micro-batch x grad-accum"] == (
        "2 x 8 = 16; padding-free (each micro-batch one unpadded row)")
    partial = {**summary, "checkpointing": {"mode": "auto", "layers": 32, "checkpointed": 25}}
    phase = {r.label: r.value for r in data_tables.phase_rows({"train-2": partial}, cfg)}
    assert phase["segment 2: micro-batch x grad-accum"] == (
        "2 x 8 = 16; gradient checkpointing on 25 of 32 layers (auto)")
    auto = load_config("paper", ["train.checkpoint_layers='auto'"])
    row = {r.label: r for r in data_tables.table3_rows(auto, "fp16")}["gradient checkpointing"]
    assert (row.paper, row.value) == ("enabled", "enabled, layers: auto")


def test_training_audit_rates_print_as_the_paper():
    block = {"k": 11, "n": 40, "rate": 0.275, "wilson95": [0.1604, 0.4262]}
    assert eval_tables.rate_ci(block) == "11/40 (27.5%) [16%, 43%]"
    assert eval_tables.rate_ci({"k": 16, "n": 40, "wilson95": [0.2625, 0.5531]}) == (
        "16/40 (40%) [26%, 55%]")
    assert eval_tables.rate_ci({"k": 0, "n": 0, "wilson95": None}) is None


def test_smoke_data_stages_give_table1_and_tables_not_dumps(tmp_path, paper_run, capsys):
    run = tmp_path / "smoke-run"
    for stage in ("data", "audit-data", "report"):
        assert main([stage, "--run-dir", str(run)]) == 0
    md = (run / "report/report.md").read_text()
    doc = read_json(run / "audit-data/table1.json")
    other = doc["keyword"]["distribution"]["other/general advising"]
    cells = md_row(md, "other/general advising")
    assert cells[1] == "64 (32.0%)"
    assert cells[2] == f"{other['count']} ({other['percent']:.1f}%)"
    assert md_verdict(md, "other/general advising") == (
        "dataset differs from the paper's: builtin:smoke")
    # a paper-shaped run: outside the collapsed raw values no table is a key/value dump
    assert main(["verify", "--profile", "paper", "--run-dir", str(paper_run)]) == 15  # PARTIAL
    assert main(["report", "--profile", "paper", "--run-dir", str(paper_run)]) == 0
    for text in (md, (paper_run / "report/report.md").read_text()):
        shown = re.sub(r"```.*?```", "", text, flags=re.S)  # the raw values, as code blocks
        assert "| key | value |" not in shown
        firsts = [line.split(" | ")[0].lstrip("| ") for line in shown.splitlines()
                  if line.startswith("| ")]  # fmt: skip
        assert not [f for f in firsts if re.fullmatch(r"\w+(\.\w+)+", f)]


def test_no_absolute_path_reaches_the_report(paper_run, capsys):
    folder = paper_run.parent / "cache" / "models" / "Mistral-7B-Instruct-v0.3-abc123"
    summary = read_json(paper_run / "train-1/summary.json")
    summary["base_folder"] = str(folder)  # as a real segment summary records it
    write_json(paper_run / "train-1/summary.json", summary)
    metrics = read_json(paper_run / "metrics/summary.json")
    metrics["bertscore"] = {"model": "roberta-large", "num_layers": 17,
                            "rescale_with_baseline": True,
                            "hash": f"{folder.parent / 'roberta-large'}_L17_no-idf_version=0.3.12"
                                    "(hug_trans=5.17.0)-rescaled"}  # fmt: skip
    write_json(paper_run / "metrics/summary.json", metrics)
    assert main(["report", "--profile", "paper", "--run-dir", str(paper_run)]) == 0
    for name in ("report.html", "report.md"):
        text = (paper_run / "report" / name).read_text()
        assert str(paper_run.parent) not in text, name
        assert "…/Mistral-7B-Instruct-v0.3-abc123" in text  # the folder's name is kept
        assert "hash roberta-large_L17_no-idf_version=0.3.12(hug_trans=5.17.0)-rescaled" in text


def check(cid, status, required=True, why="", rng="= 1"):
    return {"id": cid, "status": status, "required": required, "why": why, "range": rng}


def test_row_verdicts_prefer_the_variant_that_ran():
    record = {"expected": "repro/expected/paper.toml", "checks": [
        check("judge.n", "SKIP", why="rerun range"), check("judge.n.released", "PASS", rng="= 50"),
        check("a", "FAIL", why="above the maximum 3"), check("b", "FAIL", False, "below 1"),
        check("c", "SKIP", why="stage not run"),
    ]}  # fmt: skip
    v = rows.Verdicts(VerifyRecord.from_json(record))
    row = rows.Row("n", "50", "50", (("", "judge.n"),))
    assert rows.verdict(row, v) == ("PASS", "PASS")
    assert rows.range_text(v.shown(row.checks)) == "= 50"
    assert rows.verdict(rows.Row("x", "1", "4", (("", "a"), ("", "b"))), v) == (
        "FAIL: above the maximum 3; below 1", "FAIL")
    assert rows.verdict(rows.Row("y", "1", "0", (("", "b"),)), v)[0] == "FAIL (info): below 1"
    assert rows.verdict(rows.Row("z", "1", "1", (("", "c"),)), v) == (
        "SKIP: stage not run", "SKIP")
    noted = rows.Row("z", "1", "1", (("", "c"),), note="judge backend differs")
    assert rows.verdict(noted, v) == ("SKIP: judge backend differs", "SKIP")
    assert rows.verdict(rows.Row("w", "1", "1", (("", "nope"),)), v)[0] == (
        "no expected range in repro/expected/paper.toml")
    assert rows.verdict(rows.Row("m", "1", None, missing="judge"), v) == (
        "not run: judge", "SKIP")
    assert rows.verdict(row, rows.Verdicts(None))[0] == "verify not run (repro verify)"


def test_table2_gives_the_paper_and_the_verdict_to_the_pooled_figures_the_checks_read():
    """The paper's Table 2 figures and the expected ranges (`all.*`) are of both splits pooled:
    those rows carry them; each split's own figures are shown without either, but for the
    test split's repeated answers, which has its own check on the pooled groups."""
    from advisor_repro.config import load_config

    def split(d1: float, groups: int, pooled_groups: int) -> dict:
        return {"valid_rate": 1.0, "empty_fields": 0, "exact_duplicate_conversations": 0,
                "repeated_answer_groups": groups, "repeated_answer_instances": 2 * groups,
                "repeated_answer_groups_pooled": pooled_groups, "distinct_1": d1,
                "distinct_2": 10 * d1, "turns_mean": 5.19, "turns_sd": 0.98}

    doc = {"all": split(0.0054, 2, 2), "train": split(0.0061, 2, 2), "test": split(0.02, 0, 1)}
    by_label = {r.label: r for r in data_tables.table2_rows(doc, load_config("paper"))}
    pooled = by_label["distinct-1, both splits, 2,676"]
    assert (pooled.paper, pooled.value, pooled.checks) == \
        ("0.0054", "0.0054", (("", "table2.distinct_1"),))
    train = by_label["distinct-1, train, 2,274"]
    assert (train.paper, train.value) == ("-", "0.0061")
    assert all(stem.startswith("-") for _, stem in train.checks)  # no verdict of its own
    reps = by_label["repeated assistant turns, both splits, 2,676"]
    assert reps.value == "2 grp / 4 turns" and dict(reps.checks)["groups"] == \
        "table2.repeated_answer_groups"
    in_test = by_label["repeated assistant answers with a turn in test (of the pooled groups)"]
    assert in_test.value == "1 grp" and in_test.checks == (("", "table2.repeated_answers_in_test"),)
    assert "repeated assistant turns, test, 402" not in by_label
