"""Scenario 13: imported results are a state of their own (issue 17).

`repro import-release` writes data/, generate/, metrics/ and judge/ from the paper's released
files. `repro judge`, `repro metrics` and `repro all` on that run leave them byte-identical
(skip, or refuse before touching anything), `repro status` and `plan` say `imported` with the
source files and their sha256, and `repro verify` passes the same 28 checks before and after.
The issue's own report: only the judge CSV and the BERTScore JSON imported, then
`repro judge --force`: refused (exit 7, the missing prompts named), judge/ unchanged.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from advisor_repro.cli import main
from advisor_repro.files import hash_tree, read_json, sha256_file
from stages.test_verify import write_release_files

IMPORTED = ("data", "generate", "metrics", "judge")


def tree(run) -> dict[str, str]:
    """Every file of the run directory and its sha256, but the lock itself."""
    return {k: v for k, v in hash_tree(run).items() if k != ".lock"}


def passing(run) -> list[str]:
    return [c["id"] for c in read_json(run / "verify/verify.json")["checks"]
            if c["status"] == "PASS"]


def test_imported_release_survives_judge_metrics_and_all_and_verify_still_passes(tmp_path,
                                                                                capsys):
    folder, run = tmp_path / "released", tmp_path / "run"
    write_release_files(folder)
    assert main(["import-release", str(folder), "--run-dir", str(run)]) == 0
    # the made-up per-item values miss the paper's exact CIs (6 exact checks): exit 11
    assert main(["verify", "--run-dir", str(run)]) == 11
    before = passing(run)
    assert len(before) == 28
    kept = {name: hash_tree(run / name) for name in IMPORTED}
    capsys.readouterr()

    for stage in ("judge", "metrics", "data", "generate"):
        assert main([stage, "--run-dir", str(run)]) == 0
        out = capsys.readouterr().out
        assert f"[{stage}] imported (from eval_prompts.csv sha256 " in out, out
        assert f"`--force {stage}` recomputes it, replacing the import" in out
    # `repro all`: preflight passes on this CPU (GPU requirement lifted), data is imported, and
    # audit-data, which audits the dataset itself, refuses before writing: the released files
    # hold no dataset and the hub dataset is not cached here
    cpu = ("--set", "hardware.require_cuda=false", "--set", "hardware.min_vram_gib=0")
    snapshot = tree(run)
    assert main(["all", *cpu, "--run-dir", str(run)]) == 6
    captured = capsys.readouterr()
    assert "[data] imported (from" in captured.out
    assert "dataset millat/StudyAbroadGPT-Dataset (revision main) is not in" in captured.err
    assert "repro fetch --profile paper" in captured.err
    changed = {k for k in set(tree(run)) | set(snapshot) if tree(run).get(k) != snapshot.get(k)}
    assert {k.split("/")[0] for k in changed} <= {"preflight", "manifest.json"}
    for name in IMPORTED:
        assert hash_tree(run / name) == kept[name], name

    assert main(["status", "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    prompts_sha = sha256_file(folder / "eval_prompts.csv")[:12]
    judge_sha = sha256_file(folder / "judge_scores.csv")[:12]
    for name in IMPORTED:
        line = next(ln for ln in out.splitlines() if ln.startswith(f"{name} "))
        assert line.split()[1] == "imported", line
        assert f"eval_prompts.csv sha256 {prompts_sha}" in line
        assert f"judge_scores.csv sha256 {judge_sha}" in line
    assert main(["plan", "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert sum("skip (imported)" in ln for ln in out.splitlines()) == len(IMPORTED)

    assert main(["verify", "--run-dir", str(run)]) == 11
    assert passing(run) == before
    for name in IMPORTED:
        assert hash_tree(run / name) == kept[name], name


def test_forced_judge_on_a_partial_import_is_refused_and_changes_nothing(tmp_path, capsys):
    """The issue's report: judge CSV + BERTScore JSON only; the rerun wiped the judge table."""
    full, part, run = tmp_path / "released", tmp_path / "part", tmp_path / "run"
    write_release_files(full)
    part.mkdir()
    for name in ("judge_scores.csv", "bertscore_raw.json"):
        shutil.copy(full / name, part / name)
    assert main(["import-release", str(part), "--run-dir", str(run)]) == 0
    snapshot = tree(run)
    capsys.readouterr()
    assert main(["judge", "--run-dir", str(run)]) == 0  # imported: kept, and said
    assert "[judge] imported (from judge_scores.csv sha256" in capsys.readouterr().out
    assert main(["judge", "--force", "--run-dir", str(run)]) == 7
    err = capsys.readouterr().err
    assert "stage 'judge' needs data/eval_prompts.jsonl, generate/answers.jsonl" in err
    assert "nothing was changed" in err and "fix: run the earlier stage first: repro data" in err
    assert tree(run) == snapshot  # manifest included: a refused command records nothing
    assert main(["verify", "--run-dir", str(run)]) == 11
    judge_checks = [c for c in passing(run) if c.startswith("judge.")]
    assert len(judge_checks) == 19  # Table 4 from the released verdicts, not skipped


RELEASED = Path(__file__).resolve().parents[1] / "report" / "released"  # the paper's own files


def test_the_papers_released_files_survive_judge_and_all_and_verify_passes_28(tmp_path,
                                                                             capsys):
    """The Done-when of issue 17 on the real released judge CSV and BERTScore JSON."""
    run = tmp_path / "run"
    assert main(["import-release", str(RELEASED), "--run-dir", str(run)]) == 0
    assert main(["verify", "--run-dir", str(run)]) == 15  # PARTIAL: 28 of 126 ran
    before = passing(run)
    assert len(before) == 28
    kept = {name: hash_tree(run / name) for name in ("metrics", "judge")}
    capsys.readouterr()
    assert main(["judge", "--run-dir", str(run)]) == 0
    assert "[judge] imported (from v4-llm-judge-scores.csv sha256 ff704ab7095e" \
        in capsys.readouterr().out
    assert main(["judge", "--force", "--run-dir", str(run)]) == 7  # no prompts released here
    assert "nothing was changed" in capsys.readouterr().err
    assert main(["all", "--run-dir", str(run)]) == 4  # the paper profile on a CPU: preflight
    for name in ("metrics", "judge"):
        assert hash_tree(run / name) == kept[name], name
    capsys.readouterr()
    assert main(["status", "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    for name in ("metrics", "judge"):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"{name} "))
        assert line.split()[1] == "imported" and "v4-bertscore-raw.json sha256 586cdf61ecac" \
            in line, line
    assert main(["verify", "--run-dir", str(run)]) == 15
    assert passing(run) == before
