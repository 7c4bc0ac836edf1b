"""steplog.CheckpointRotation (checkpoints.rotate_checkpoints): the checkpoints folder ends as the
uninterrupted run's, whatever pause or SIGTERM saved a checkpoint between the regular ones (the
crash sweep found control/checkpoints/checkpoint-1 left beside checkpoint-2)."""

from pathlib import Path

import pytest

from advisor_repro.training.checkpoints import rotate_checkpoints


def saves(folder: Path, steps: list[int], every: int, max_steps: int) -> list[int]:
    """Save a checkpoint at each of `steps` in turn, rotating after each as on_save does."""
    for step in steps:
        (folder / f"checkpoint-{step}").mkdir()
        (folder / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
        rotate_checkpoints(folder, every, max_steps)
    return sorted(int(p.name.split("-")[1]) for p in folder.iterdir())


@pytest.mark.parametrize(("every", "max_steps", "stopped_at"), [
    (2, 6, 5),  # a pause between the last two regular saves
    (2, 6, 3),
    (2, 6, 1),
    (2, 2, 1),  # the control run of the sweep: one regular save, the pause before it
    (2, 7, 7),  # the last step is always saved
    (4, 10, 9),
])
def test_a_pause_checkpoint_leaves_the_uninterrupted_set(tmp_path, every, max_steps, stopped_at):
    regular = sorted({s for s in range(1, max_steps + 1) if s % every == 0} | {max_steps})
    (tmp_path / "alone").mkdir()
    alone = saves(tmp_path / "alone", regular, every, max_steps)
    assert alone == regular[-2:]
    before = [s for s in regular if s < stopped_at]
    after = [s for s in regular if s > stopped_at]
    (tmp_path / "paused").mkdir()
    # the pause's checkpoint is the newest, kept for the resume, until a later save
    assert saves(tmp_path / "paused", [*before, stopped_at], every, max_steps)[-1] == stopped_at
    assert saves(tmp_path / "paused", after, every, max_steps) == alone


def test_the_trainers_own_rotation_would_have_kept_the_pause_checkpoint(tmp_path):
    # what save_total_limit = 2 did: the last two of any kind; 6 steps, a pause at 5
    kept = [2, 4, 5, 6][-2:]
    assert kept == [5, 6] != saves(tmp_path, [2, 4, 5, 6], 2, 6) == [4, 6]
