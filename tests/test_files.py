"""files.atomic_folder: a folder appears whole or not at all."""

import pytest

from advisor_repro.files import atomic_folder


def test_a_finished_block_replaces_the_folder(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old").write_text("old")
    with atomic_folder(final) as tmp:
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp folder left


def test_an_error_leaves_the_old_folder_and_no_temp(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(final) as tmp:
        (tmp / "half").write_text("half")
        raise RuntimeError("killed half-way")
    assert sorted(p.name for p in final.iterdir()) == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_without_replace_an_existing_folder_wins(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "theirs").write_text("x")
    with pytest.raises(OSError), atomic_folder(final, replace=False) as tmp:
        (tmp / "ours").write_text("y")
    assert sorted(p.name for p in final.iterdir()) == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
