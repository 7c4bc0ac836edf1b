"""The exit codes are a documented contract: the README's table lists exactly EXIT_CODES."""

import re
from pathlib import Path

from advisor_repro.errors import EXIT_CODES, ReproError, Terminated, UnwritableError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_exit_code_table_lists_every_code_once():
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Exit codes"):].split("\n## ", 1)[0]
    codes = [int(c) for c in re.findall(r"^\| (\d+) \|", table, re.M)]
    assert sorted(codes) == sorted(EXIT_CODES) and len(codes) == len(set(codes))


def test_every_error_class_has_its_own_code():
    classes = [c for c in vars(__import__("advisor_repro.errors").errors).values()
               if isinstance(c, type) and issubclass(c, ReproError) and c is not ReproError]
    codes = [c.exit_code for c in classes]
    assert len(codes) == len(set(codes)) and set(codes) <= set(EXIT_CODES)
    assert (UnwritableError.exit_code, Terminated.exit_code) == (13, 14)
