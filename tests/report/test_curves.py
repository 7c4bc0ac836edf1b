"""The paper's released W&B loss curves (artifacts/curves/): provenance, the values the paper
quotes from them, the refusal of an edited copy, and the verify checks on a run's curve."""

import hashlib
import shutil
import tomllib

from advisor_repro.cli import main
from advisor_repro.files import read_json, read_jsonl, write_jsonl
from advisor_repro.report import curves


def test_shipped_curves_match_their_provenance_and_the_paper():
    index = tomllib.loads((curves.CURVES / "curves.toml").read_text())
    for entry in index.values():
        data = (curves.CURVES / entry["path"]).read_bytes()
        assert len(data) == entry["bytes"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert "MIT License" in (curves.CURVES / "LICENSE-StudyAbroadGPT").read_text()
    paper, problem = curves.released()
    assert problem == ""
    seg1, seg2 = dict(paper["segment1"]), dict(paper["segment2"])
    assert list(seg1) == [float(s) for s in range(1, 285)]  # 284 optimizer steps
    assert list(seg2) == [float(s) for s in range(1, 143)]  # 142: W&B's empty row 0 dropped
    # PAPER.md: 1.0125 -> 0.4787 (min 0.4109 at step 261); 0.4343 -> 0.3405 (min 0.2963);
    # segment 2 rises to ~0.52 at step 72, then drops at the epoch boundary
    assert (seg1[1], seg1[284], min(seg1.values())) == (1.0125, 0.4787, 0.4109)
    assert min(seg1, key=seg1.get) == 261
    assert (seg2[1], seg2[142], min(seg2.values())) == (0.4343, 0.3405, 0.2963)
    assert seg2[72] == 0.5169 and seg2[73] == 0.3457 and seg2[72] > seg2[10]


def test_an_edited_curve_is_not_drawn_and_the_report_says_why(tmp_path, monkeypatch):
    copy = tmp_path / "curves"
    shutil.copytree(curves.CURVES, copy)
    path = copy / "Report_T4/train/loss__MAX.csv"
    path.write_text(path.read_text().replace('"0.5169"', '"0.1169"', 1))
    monkeypatch.setattr(curves, "CURVES", copy)
    paper, problem = curves.released()
    assert list(paper) == ["segment1"]
    assert problem == "Report_T4/train/loss__MAX.csv: sha256 differs from curves.toml (edited?)"
    blocks = curves.loss_blocks({"train-1": [{"step": 1, "loss": 1.0}]}, None, {})
    assert "sha256 differs from curves.toml" in blocks[-1].text


def test_curve_checks_pass_on_the_paper_shape_and_fail_without_the_drop(tmp_path, capsys):
    from stages.conftest import write_paper_run

    run = write_paper_run(tmp_path / "run")
    assert main(["verify", "--profile", "paper", "--run-dir", str(run)]) == 15  # PARTIAL
    status = {c["id"]: c for c in read_json(run / "verify/verify.json")["checks"]}
    for cid in ("curve.segment2_rise", "curve.segment2_drop", "curve.min"):
        assert status[cid]["status"] == "PASS", status[cid]
    # segment 2 without the drop at the epoch boundary (loss flat after step 72)
    rows = read_jsonl(run / "train-2/steps.jsonl")
    at72 = next(r["loss"] for r in rows if r["step"] == 72)
    for r in rows:
        if r["step"] > 72:
            r["loss"] = at72
    write_jsonl(run / "train-2/steps.jsonl", rows)
    assert main(["verify", "--profile", "paper", "--run-dir", str(run)]) == 11
    status = {c["id"]: c for c in read_json(run / "verify/verify.json")["checks"]}
    assert status["curve.segment2_drop"]["status"] == "FAIL"
    assert status["curve.segment2_drop"]["value"] == 0
