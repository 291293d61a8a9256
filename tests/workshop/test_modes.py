"""The teacher page shows code read from the files: every fix reference still resolves, every twin says what it is.

When a refactor moves a function the workshop points at (say `order_place` leaves orders/services.py), this
fails and names the reference to update in workshop/modes.py, instead of the page quietly showing stale code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workshop.modes import MODES
from workshop.source import excerpt, file_excerpt

ROOT = Path(__file__).resolve().parents[2]
REFERENCES = [(slug, reference) for slug, mode in MODES.items() for reference in mode.fix]
TWIN_FILES = [(slug, path) for slug, mode in MODES.items() for path in mode.twin_files]


@pytest.mark.parametrize(("mode", "reference"), REFERENCES)
def test_every_fix_reference_resolves_to_the_lines_in_its_file(mode: str, reference: str) -> None:
    shown = excerpt(reference)
    assert shown.found
    lines = (ROOT / shown.path).read_text().splitlines()
    on_disk = lines[shown.first_line - 1 : shown.first_line - 1 + len(shown.code.splitlines())]
    # The page shows the file's own lines (JavaScript is only re-indented), never a copy kept elsewhere.
    assert [line.strip() for line in shown.code.splitlines()] == [line.strip() for line in on_disk]
    assert not shown.path.startswith(("workshop/", ".venv/")), "the fix is the real shop's own code"


@pytest.mark.parametrize(("mode", "path"), TWIN_FILES)
def test_every_twin_file_opens_by_saying_it_is_the_anti_pattern_and_where_the_fix_lives(mode: str, path: str) -> None:
    first_lines = file_excerpt(path).code.splitlines()[:3]
    assert "ANTI-PATTERN on purpose" in "\n".join(first_lines), f"{path}: rule 17 wants it said on line 1"
    named = re.findall(
        r"(?:static/js|[a-z_]+)/[\w/]+\.(?:py|js|html)", "\n".join(file_excerpt(path).code.splitlines()[:8])
    )
    assert named, f"{path} names no file where the fix lives"
    for fix_file in named:
        assert (ROOT / fix_file).exists(), f"{path} points at {fix_file}, which does not exist"


def test_a_moved_reference_is_shown_as_moved_not_as_an_error() -> None:
    from workshop.source import excerpt_or_missing

    shown = excerpt_or_missing("orders.services:no_such_function")
    assert not shown.found
    assert "moved" in shown.code
