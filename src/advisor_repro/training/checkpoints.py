"""The Trainer checkpoints of one training run on disk: which are complete (a kill or a full
disk during a save leaves a torn one, found by its files, not trusted), which the rotation keeps
(the last two regular ones and the newest), and a checkpoint's step. No torch: files only."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

_CKPT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(path: Path) -> int:
    return int(_CKPT.match(path.name).group(1))  # type: ignore[union-attr]


def rotate_checkpoints(folder: Path, every: int, max_steps: int) -> list[str]:
    """Remove what steplog.CheckpointRotation does not keep (the last two regular checkpoints,
    every `every` steps and the last step, and the newest of any kind); returns the names."""
    found = sorted((p for p in folder.iterdir() if p.is_dir() and _CKPT.match(p.name)),
                   key=checkpoint_step) if folder.is_dir() else []
    regular = [p for p in found if checkpoint_step(p) % every == 0
               or checkpoint_step(p) == max_steps]
    keep = {*regular[-2:], *found[-1:]}
    removed = [p.name for p in found if p not in keep]
    for name in removed:
        shutil.rmtree(folder / name)
    return removed


def last_complete_checkpoint(folder: Path, say: Callable[[str], None] | None = None
                             ) -> Path | None:
    """The newest Trainer checkpoint that was written to the end (trainer_state.json is saved
    last, and every weight and optimizer file is whole); newer torn ones, from a kill or a full
    disk during a save, are removed, and `say` is told which and why."""
    if not folder.is_dir():
        return None
    found = sorted((p for p in folder.iterdir() if p.is_dir() and _CKPT.match(p.name)),
                   key=checkpoint_step, reverse=True)
    for path in found:
        torn = _torn(path)
        if torn is None:
            return path
        if say:
            say(f"checkpoint {path.name} is incomplete ({torn}): removed; resuming from the "
                "previous complete one")
        shutil.rmtree(path)
    return None


def _torn(path: Path) -> str | None:
    """Why a checkpoint cannot be resumed from, or None when it is complete."""
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "trainer_state.json missing or unreadable"
    if state.get("global_step") != checkpoint_step(path):
        return "trainer_state.json is of another step"
    for name in ("optimizer.pt", "scheduler.pt", "adapter_model.safetensors"):
        if not (path / name).is_file():
            return f"{name} missing"
    for name in sorted(p.name for p in path.iterdir()):
        why = _file_torn(path / name)
        if why:
            return f"{name} {why}"
    return None


def _file_torn(file: Path) -> str | None:
    """A safetensors file shorter than its header says, or a torch.save zip without its end
    record (both are what a write cut short leaves); other files are not checked."""
    import struct
    import zipfile

    size = file.stat().st_size
    if file.suffix == ".safetensors":
        with open(file, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"truncated ({size} bytes)"
            n = struct.unpack("<Q", head)[0]
            try:
                header = json.loads(fh.read(n))
            except ValueError:
                return "truncated (its header is cut)"
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"),
                  default=0)
        return None if size >= 8 + n + end else f"truncated ({size} of {8 + n + end} bytes)"
    if file.suffix in (".pt", ".pth", ".bin") and not zipfile.is_zipfile(file):
        return f"truncated ({size} bytes, no end record)"
    return None
