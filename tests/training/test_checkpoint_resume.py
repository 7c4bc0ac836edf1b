"""Crash-resume checkpoints: a torn or truncated one (a kill or a full disk during the save) is
found, removed and said, and the previous complete checkpoint is resumed from (issue 17)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from advisor_repro.training.checkpoints import last_complete_checkpoint


def checkpoint(folder, step: int):
    """A Trainer checkpoint as TRL writes one: adapter, optimizer, scheduler, RNG, state last."""
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"lora_A": torch.full((64, 16), float(step))}, path / "adapter_model.safetensors")
    torch.save({"state": {0: {"exp_avg": torch.ones(256, 16) * step}}}, path / "optimizer.pt")
    torch.save({"last_epoch": step}, path / "scheduler.pt")
    torch.save({"python": step}, path / "rng_state.pth")
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def cut(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("name,why", [
    ("adapter_model.safetensors", "adapter_model.safetensors truncated ("),
    ("optimizer.pt", "optimizer.pt truncated ("),
    ("rng_state.pth", "rng_state.pth truncated ("),
    ("trainer_state.json", "trainer_state.json missing or unreadable"),
])
def test_a_torn_newest_checkpoint_is_removed_and_the_previous_used(name, why, tmp_path):
    older, newer = checkpoint(tmp_path, 2), checkpoint(tmp_path, 4)
    cut(newer / name)
    said: list[str] = []
    assert last_complete_checkpoint(tmp_path, said.append) == older
    assert not newer.exists() and older.is_dir()
    assert len(said) == 1 and said[0].startswith(f"checkpoint checkpoint-4 is incomplete ({why}")
    assert said[0].endswith("removed; resuming from the previous complete one")


def test_whole_checkpoints_are_kept_and_the_newest_used(tmp_path):
    checkpoint(tmp_path, 2)
    newer = checkpoint(tmp_path, 4)
    said: list[str] = []
    assert last_complete_checkpoint(tmp_path, said.append) == newer and said == []


def test_a_safetensors_header_cut_short_and_a_missing_file_are_torn(tmp_path):
    older, newer = checkpoint(tmp_path, 2), checkpoint(tmp_path, 4)
    (newer / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a")
    (older / "scheduler.pt").unlink()
    said: list[str] = []
    assert last_complete_checkpoint(tmp_path, said.append) is None  # nothing to resume from
    assert "adapter_model.safetensors truncated (its header is cut)" in said[0]
    assert "scheduler.pt missing" in said[1] and not any(tmp_path.iterdir())
