"""`repro verify`: the real CLI over a smoke run, a paper-shaped run and a release-shaped run."""


import pytest

from advisor_repro.cli import main
from advisor_repro.errors import VERIFY_PARTIAL, VerifyFailed
from advisor_repro.files import read_json, write_json
from advisor_repro.judges import stats as judge_stats
from advisor_repro.report.verify_record import VerifyRecord
from advisor_repro.stats import bootstrap_ci_numpy, bootstrap_ci_random

from .conftest import PAPER_DRAW, bertscore_items, judge_verdicts


def statuses(run_dir) -> dict[str, str]:
    return {c["id"]: c["status"] for c in read_json(run_dir / "verify/verify.json")["checks"]}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke profile's data and Table 2 stages, run for real (seconds)."""
    run = tmp_path_factory.mktemp("smoke") / "run"
    for stage in ("data", "audit-data"):
        assert main([stage, "--run-dir", str(run)]) == 0
    return run


def test_smoke_run_verifies_and_prints_the_table(smoke_run, capsys):
    assert main(["verify", "--run-dir", str(smoke_run)]) == 0  # MECHANISM ONLY exits 0
    out = capsys.readouterr().out
    assert "PASS" in out and "data.eval_draw" in out
    # the headline: the smoke model tests the code path, never the paper's numbers; then one
    # line per claim, and the skipped checks folded by reason, each reason said once
    assert "MECHANISM ONLY: this profile tests the code path, not the paper's numbers" in out
    assert "claim 1. the two-GPU recipe: not tested (this profile trains smoke weights" in out
    assert out.count("stage train-1 not run") == 1 and "skipped: stage train-1 not run: " in out
    record = read_json(smoke_run / "verify/verify.json")
    st = statuses(smoke_run)
    assert st["data.eval_draw"] == st["table2.duplicate_conversations"] == "PASS"
    assert record["ok"] and record["counts"]["FAIL"] == 0
    skipped = [c for c in record["checks"] if c["status"] == "SKIP"]
    assert all(c["why"].startswith(("stage not run", "stage ")) for c in skipped)
    assert record["headline"]["state"] == "MECHANISM ONLY"
    assert VerifyRecord.from_json(record).to_json() == record  # the typed record, key for key
    md = (smoke_run / "verify/verify.md").read_text()
    assert md.startswith("# Verify") and "**MECHANISM ONLY" in md and "## Dataset" in md
    assert read_json(smoke_run / "verify/done.json")["figures"]["fail"] == 0


def test_a_corrupted_value_fails_verify_naming_the_check(smoke_run, capsys):
    table = read_json(smoke_run / "audit-data/table2.json")
    table["all"]["exact_duplicate_conversations"] = 3
    write_json(smoke_run / "audit-data/table2.json", table)
    try:
        assert main(["verify", "--run-dir", str(smoke_run)]) == VerifyFailed.exit_code == 11
        err = capsys.readouterr().err
        assert "table2.duplicate_conversations (this run 3; differs from 0)" in err
        assert "verify/verify.md" in err  # the fix names where the table is
        assert statuses(smoke_run)["table2.duplicate_conversations"] == "FAIL"
        assert not (smoke_run / "verify/done.json").exists()  # a failed verdict is never "done"
        assert (
            "table2.duplicate_conversations" in read_json(smoke_run / "verify/failed.json")["error"]
        )
    finally:
        table["all"]["exact_duplicate_conversations"] = 0
        write_json(smoke_run / "audit-data/table2.json", table)


def test_strict_fails_on_a_skipped_required_check(smoke_run, capsys):
    assert main(["verify", "--run-dir", str(smoke_run), "--set", "verify.strict=true"]) == 11
    err = capsys.readouterr().err
    assert (
        "failed or were skipped (strict)" in err
        and "train1.trainable_params (this run skipped" in err
    )


def test_paper_shaped_run_passes_every_check_it_has(paper_run, capsys):
    assert (
        main(
            [
                "verify",
                "--profile",
                "paper",
                "--set",
                "judge.backend='anthropic'",
                "--run-dir",
                str(paper_run),
            ]
        )
        == VERIFY_PARTIAL  # the paper-shaped run lacks Table 1 and some audit figures
    )
    head = read_json(paper_run / "verify/verify.json")["headline"]
    assert head["state"] == "PARTIAL" and head["ran"] < head["required"]
    assert head["line"] == (f"PARTIAL: {head['ran']} of {head['required']} of the paper's "
                            f"required checks ran, all passed; "
                            f"{head['required'] - head['ran']} skipped")
    st = statuses(paper_run)
    for cid in (
        "train.total_steps",
        "train1.warmup_steps",
        "train2.fresh_schedule",
        "train2.ends_below_segment1",
        "train1.peak_reserved",
        "generate.truncated_ft_512",
        "metrics.256.bertscore_f1.delta",
        "judge.preference.base_over_ft",
        "audit.ft_errors_above_base",
        "audit_training.hard_rate",
    ):
        assert st[cid] == "PASS", cid
    assert st["judge.domain.base.mean.released"] == "SKIP"  # exact only on released verdicts
    capsys.readouterr()
    # another judge than the paper's: its checks are SKIP with the reason, not FAIL
    assert (
        main(
            [
                "verify",
                "--profile",
                "paper",
                "--set",
                "judge.backend='local'",
                "--run-dir",
                str(paper_run),
            ]
        )
        == VERIFY_PARTIAL
    )
    checks = {c["id"]: c for c in read_json(paper_run / "verify/verify.json")["checks"]}
    assert checks["judge.domain.delta"]["status"] == "SKIP"
    assert checks["judge.domain.delta"]["why"].startswith("judge backend differs from the paper's")


def test_lowered_bertscore_delta_fails_the_direction(paper_run, capsys):
    summary = read_json(paper_run / "metrics/summary.json")
    summary["512"]["bertscore_f1"]["delta"] = -0.01
    write_json(paper_run / "metrics/summary.json", summary)
    assert main(["verify", "--profile", "paper", "--run-dir", str(paper_run)]) == 11
    assert "metrics.512.bertscore_f1.delta (this run -0.01; not above 0)" in capsys.readouterr().err


def write_release_files(folder):
    """The paper's released evaluation files, in their formats (PAPER.md "Released
    artifacts"): prompts, base and FT outputs at 256 tokens, judge scores, raw BERTScore."""
    import csv
    import json

    folder.mkdir(parents=True)
    prompts = [(i, d, f"question {min(i, 47)}") for i, d in enumerate(PAPER_DRAW)]

    def table(name, header, rows):
        with open(folder / name, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([header, *rows])

    table("eval_prompts.csv", ["sample_id", "dataset_index", "prompt"], prompts)
    for name in ("base_outputs.csv", "lora_outputs.csv"):
        table(name, ["sample_id", "dataset_index", "prompt", "response", "generation_time_sec",
                     "response_char_length", "response_token_count", "was_truncated"],
              [(i, d, p, "an answer", 20.5, 9, 256, "True") for i, d, p in prompts])  # fmt: skip
    verdicts, _ = judge_verdicts()
    cols = ["sample_id", "domain_a", "help_a", "domain_b", "help_b", "preferred_slot",
            "note_a", "note_b"]  # fmt: skip
    table("judge_scores.csv", cols, [[r[c] for c in cols] for r in verdicts])
    base, ft = bertscore_items()
    (folder / "bertscore_raw.json").write_text(
        json.dumps(
            {
                "token_cap": 256,
                "bertscore_model": "roberta-large",
                "rescale_with_baseline": True,
                "f1_per_item_base": base,
                "f1_per_item_lora": ft,
                "precision_mean_base": 0.1,
                "recall_mean_base": 0.09,
                "precision_mean_lora": 0.17,
                "recall_mean_lora": 0.15,
            }
        )
    )
    return base, ft, verdicts


def test_run_imported_from_released_files_gets_the_recomputed_checks(tmp_path, capsys):
    from advisor_repro.config import load_config
    from advisor_repro.release.importer import import_release

    base, ft, verdicts = write_release_files(tmp_path / "release")
    run = tmp_path / "run"
    cfg = load_config("paper", ["judge.backend='replay'"])
    import_release(tmp_path / "release", run, cfg)
    code = main(["verify", "--profile", "paper", "--set", "judge.backend='replay'",
                 "--run-dir", str(run)])  # fmt: skip
    checks = {c["id"]: c for c in read_json(run / "verify/verify.json")["checks"]}
    # the released prompts: the paper's draw, index for index
    assert checks["data.eval_draw"]["status"] == checks["data.eval_prompts"]["status"] == "PASS"
    # the released per-item BERTScore: means and the numpy default_rng(42) bootstrap CI
    deltas = [f - b for b, f in zip(base, ft, strict=True)]
    lo, hi = bootstrap_ci_numpy(deltas, 1000, 42)
    assert checks["metrics.256.bertscore_f1.ci_low.released"]["value"] == pytest.approx(lo)
    assert checks["metrics.256.bertscore_f1.ci_high.released"]["value"] == pytest.approx(hi)
    for cid in ("base", "ft", "delta"):  # made to the paper's means, so these pass
        assert checks[f"metrics.256.bertscore_f1.{cid}.released"]["status"] == "PASS"
    # the released judge scores, de-blinded with random.Random(42): the paper's marginals
    for cid in ("domain.base.mean", "domain.base.sd", "domain.ft.mean", "domain.ft.sd",
                "domain.delta", "help.base.mean", "help.base.sd", "help.ft.mean", "help.ft.sd",
                "help.delta", "preference.base", "preference.ft", "preference.tie",
                "divergent.n", "divergent.favour_base", "divergent.favour_ft"):  # fmt: skip
        assert checks[f"judge.{cid}.released"]["status"] == "PASS", cid
    mapping = judge_stats.slot_mapping(list(range(50)), 42)
    domain_deltas = []
    for row in verdicts:
        d = judge_stats.deblind(row, mapping[str(row["sample_id"])])
        domain_deltas.append(d["ft_domain"] - d["base_domain"])
    ci = bootstrap_ci_random(domain_deltas, 1000, 42)
    assert checks["judge.domain.ci_low.released"]["value"] == pytest.approx(ci[0])
    # rerun ranges do not apply to imported files; what the release lacks is SKIP
    assert checks["metrics.256.bertscore_f1.delta"]["status"] == "SKIP"
    assert checks["judge.domain.delta"]["status"] == "SKIP"
    assert checks["generate.answers_256"]["status"] == "PASS"
    assert checks["generate.truncated_base_256"]["value"] == 1.0
    assert checks["generate.answers_512"]["why"].startswith("the 512-token outputs were not")
    assert checks["train1.steps"]["why"] == "stage not run (train-1/summary.json is absent)"
    failing = [c["id"] for c in checks.values() if c["status"] == "FAIL" and c["required"]]
    # made-up per-item values with the paper's marginals but not its bootstrap CIs: those
    # (exact checks, nothing else) fail, and the exit code says so
    assert failing and all(checks[i]["class"] == "exact" for i in failing)
    assert code == 11
