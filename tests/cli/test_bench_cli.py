"""`repro bench generate` through the real CLI at the tiny scale, and its refusals."""

import json

from advisor_repro.cli import main


def test_bench_generate_writes_the_record_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "generate", "--scale", "tiny", "--answers", "3", "--new-tokens", "4",
                 "--sequential", "1", "--variants", "dynamic", "--out", str(out), "--markdown"])
    assert code == 0
    rec = json.loads(out.read_text())
    assert rec["what"] == "repro bench generate" and rec["batched"]["dynamic"]["tokens"] == 12
    assert "| HF generate, one at a time (1 prompts" in capsys.readouterr().out


def test_bad_options_are_refused_with_exit_2(tmp_path, capsys):
    assert main(["bench", "generate", "--variants", "paged", "--out", str(tmp_path / "x")]) == 2
    assert main(["bench", "generate", "--answers", "2", "--sequential", "3"]) == 2
    assert "--sequential <= --answers" in capsys.readouterr().err
