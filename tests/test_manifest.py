"""The run directory's root: runs/ under the working directory, or $ADVISOR_REPRO_RUNS (the
container sets /runs, a mount point)."""

from pathlib import Path

from advisor_repro.cli import main
from advisor_repro.config import load_config
from advisor_repro.manifest import last_run_dir, resolve_run_dir


def test_default_root_is_runs_under_the_working_directory(monkeypatch):
    monkeypatch.delenv("ADVISOR_REPRO_RUNS", raising=False)
    cfg = load_config("smoke")
    assert resolve_run_dir(None, None, cfg) == Path("runs/smoke")
    assert resolve_run_dir(None, "mine", cfg) == Path("runs/mine")


def test_env_root_is_used_and_run_dir_still_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("ADVISOR_REPRO_RUNS", str(tmp_path / "mounted"))
    cfg = load_config("smoke")
    assert resolve_run_dir(None, None, cfg) == tmp_path / "mounted" / "smoke"
    assert resolve_run_dir("elsewhere", None, cfg) == Path("elsewhere")
    assert resolve_run_dir(None, None, cfg, runs_root=tmp_path / "given") == (
        tmp_path / "given" / "smoke"
    )


def test_cli_writes_under_the_env_root_and_continues_its_latest(monkeypatch, tmp_path, capsys):
    root = tmp_path / "mounted"
    monkeypatch.setenv("ADVISOR_REPRO_RUNS", str(root))
    monkeypatch.chdir(tmp_path)  # a relative runs/ would land here: it must not appear
    assert last_run_dir() is None
    assert main(["preflight", "--profile", "smoke"]) == 0
    assert (root / "smoke" / "preflight" / "done.json").is_file()
    assert last_run_dir() == (root / "smoke").resolve()
    assert not (tmp_path / "runs").exists()
    capsys.readouterr()
    assert main(["status"]) == 0  # no --profile, no --run-dir: continues $ADVISOR_REPRO_RUNS/latest
    assert f"run directory: {(root / 'smoke').resolve()}" in capsys.readouterr().out


def test_a_run_dir_outside_the_runs_root_gets_no_latest_link(monkeypatch, tmp_path, capsys):
    root = tmp_path / "runs"
    monkeypatch.setenv("ADVISOR_REPRO_RUNS", str(root))
    elsewhere = tmp_path / "elsewhere" / "my-run"
    assert main(["preflight", "--run-dir", str(elsewhere)]) == 0
    assert sorted(p.name for p in elsewhere.parent.iterdir()) == ["my-run"]  # nothing beside it
    assert not root.exists() and last_run_dir() is None
    assert main(["preflight", "--run-dir", str(root / "mine")]) == 0  # under the root: linked
    assert last_run_dir() == (root / "mine").resolve()
