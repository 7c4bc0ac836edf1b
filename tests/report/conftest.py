"""The paper-shaped run directory of tests/stages/conftest.py, for the report tests."""

import pytest

from stages.conftest import write_paper_run


@pytest.fixture
def paper_run(tmp_path):
    return write_paper_run(tmp_path / "paper-run")
