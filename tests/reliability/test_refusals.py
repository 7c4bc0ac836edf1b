"""Scenarios 4, 5 and 6: refusals before work starts, through the real `repro` command.

4. Preflight on hardware the paper profile cannot use: no GPU (this machine), a 12 GB GPU, a
   GPU whose compute capability torch has no kernels for. The device facts are faked where
   preflight reads them (`probe_device`), as tests/test_preflight_checks.py does for decide().
5. The hub offline: a cold cache names the missing dataset / model and `repro fetch`; a warm
   cache (laid out as huggingface_hub lays it out) lets the stages run with HF_HUB_OFFLINE=1.
6. Free disk short of the plan's estimate: exit 5 from preflight, before any other stage.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest

from advisor_repro.cli import main
from advisor_repro.files import read_json, read_jsonl
from advisor_repro.hardware.preflight import probe_device

from .conftest import assert_no_secrets, run_repro

CU126 = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]
# name, compute capability, total memory in bytes as torch reports it
RTX3060 = ("NVIDIA GeForce RTX 3060", (8, 6), 12_622_168_064)  # a "12 GB" card: 11.76 GiB
B200 = ("NVIDIA B200", (10, 0), 191_517_032_448)  # sm_100: not in a CUDA 12.6 build


def fake_gpu(monkeypatch, name: str, cc: tuple[int, int], vram: int) -> None:
    """preflight sees this GPU (the disk and torch facts stay this machine's)."""

    def probe(want: str = "auto", run_dir: Path = Path(".")):
        real = probe_device("cpu", run_dir)
        return dataclasses.replace(real, kind="cuda", name=name, compute_capability=cc,
                                   total_vram_bytes=vram, driver_version="550.54.15",
                                   cuda_runtime_version="12.6", torch_arch_list=CU126)

    monkeypatch.setattr("advisor_repro.stages.preflight.probe_device", probe)


@pytest.mark.parametrize(
    "gpu,words",
    [
        (None, ["needs a CUDA GPU", "no CUDA GPU visible", "fix:", "--profile smoke", "T4"]),
        (RTX3060, ["RTX 3060", "11.76 GiB", "needs >= 14.5 GiB", "fix:", "16 GB class GPU",
                   "--allow-unsupported-gpu"]),
        (B200, ["B200", "no kernels for sm_100", "sm_90", "fix:", "--allow-unsupported-gpu"]),
    ],
    ids=["no-gpu", "12gb-gpu", "sm100-not-in-arch-list"],
)
def test_paper_profile_on_unfit_hardware_is_refused_in_seconds(gpu, words, tmp_path, capsys,
                                                               monkeypatch):
    if gpu is not None:
        fake_gpu(monkeypatch, *gpu)
    # the judge's key is there: without it `repro all` refuses even before preflight, on the
    # key (tests/test_prerequisites.py); here the hardware alone is wrong
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key")
    run = tmp_path / "run"
    t0 = time.monotonic()
    code = main(["all", "--profile", "paper", "--run-dir", str(run)])
    seconds = time.monotonic() - t0
    err = capsys.readouterr().err
    assert code == 4, err
    for w in words:
        assert w in err
    assert seconds < 15, f"preflight took {seconds:.1f} s to refuse"
    # refused before any work: only preflight's own report exists, no later stage started
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["preflight"]
    report = read_json(run / "preflight/report.json")
    assert report["decision"]["ok"] is False and report["kernel_checks"] == []
    assert read_json(run / "preflight/failed.json")["error"] in err
    assert not (run / "preflight/done.json").exists()


def test_disk_short_of_the_plan_is_refused_before_work_starts(tmp_path, capsys):
    run = tmp_path / "run"
    free_gib = shutil.disk_usage(tmp_path).free / 2**30
    margin = f"hardware.disk_margin_gib={free_gib + 1:.1f}"  # the plan needs 1 GiB more than free
    t0 = time.monotonic()
    code = main(["all", "--profile", "smoke", "--set", margin, "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 5, err
    assert time.monotonic() - t0 < 15
    assert "not enough disk" in err and "the plan needs" in err and str(tmp_path) in err
    assert "fix: free at least" in err and "--run-dir / HF_HOME" in err
    report = read_json(run / "preflight/report.json")
    need, free = report["disk_needed_bytes"], report["device"]["free_disk_bytes"]
    assert free < need <= free + 2 * 2**30
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["preflight"]


# ---- 5: the hub offline -----------------------------------------------------------------
SHA = "0123456789abcdef0123456789abcdef01234567"


def warm_cache(hub: Path, repo_folder: str, files: dict[str, Path]) -> None:
    """A hub cache entry as huggingface_hub writes it: refs/main -> snapshots/<sha>/."""
    (hub / repo_folder / "refs").mkdir(parents=True)
    (hub / repo_folder / "refs" / "main").write_text(SHA)
    snap = hub / repo_folder / "snapshots" / SHA
    snap.mkdir(parents=True)
    for name, src in files.items():
        shutil.copyfile(src, snap / name)


def offline_env(hf_home: Path) -> dict[str, str]:
    return {"HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"),
            "HF_HUB_OFFLINE": "1"}


def test_offline_dataset_cold_cache_names_it_and_warm_cache_runs(tmp_path):
    from advisor_repro.smokedata import smoke_dataset, write_splits

    log, run, hf = tmp_path / "repro.log", tmp_path / "run", tmp_path / "hf"
    args = ("--profile", "smoke", "--set", "data.source='hf:veldmark/advisor-data'",
            "--run-dir", str(run))
    assert run_repro(log, "data", *args, **offline_env(hf)) == 6
    text = log.read_text()
    assert "dataset veldmark/advisor-data (revision main) is not in the local cache" in text
    assert "repro fetch --profile paper" in text and "HF_HUB_OFFLINE=1" in text
    assert not (run / "data/done.json").exists()

    splits, _ = smoke_dataset()
    write_splits(splits, tmp_path / "src")
    warm_cache(hf / "hub", "datasets--veldmark--advisor-data",
               {f"{s}.jsonl": tmp_path / "src" / f"{s}.jsonl" for s in ("train", "test")})
    assert run_repro(log, "data", *args, **offline_env(hf)) == 0
    fp = read_json(run / "data/fingerprint.json")
    assert fp["revision"] == SHA and fp["splits"]["train"]["n"] == 100
    assert run_repro(log, "audit-data", *args, **offline_env(hf)) == 0
    assert_no_secrets(run, log)  # HF_TOKEN was in the environment of every call


@pytest.mark.slow
def test_offline_model_cold_cache_names_it_and_warm_cache_runs(run_copy, tmp_path):
    """The local judge's model from the hub: refused by name while cold, used once warm."""
    from advisor_repro.config import load_config
    from advisor_repro.models.hub import base_model

    log, hf = tmp_path / "repro.log", tmp_path / "hf"
    args = ("--profile", "smoke", "--set", "judge.local_model='veldmark/tiny-judge'",
            "--set", "judge.sample=1", "--set", "judge.swap_pass=false",
            "--run-dir", str(run_copy))
    assert run_repro(log, "judge", *args, **offline_env(hf)) == 6
    text = log.read_text()
    assert "model veldmark/tiny-judge (revision main) is not in the local cache" in text
    assert "repro fetch --profile paper" in text

    folder, _ = base_model(load_config("smoke").model)  # the smoke model, as safetensors
    warm_cache(hf / "hub", "models--veldmark--tiny-judge",
               {p.name: p for p in folder.iterdir() if p.is_file()})
    assert run_repro(log, "judge", *args, **offline_env(hf)) == 0
    (v,) = read_jsonl(run_copy / "judge/verdicts.jsonl")
    assert v["judge"]["model"] == "veldmark/tiny-judge" and v["judge"]["revision"] == SHA
    assert_no_secrets(run_copy, log)
