"""docs/workshop/ quotes only code that exists (conventions.md rule 16): each excerpt's lines are in the file it
names, and every file the pages point at is there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs" / "workshop").glob("*.md"))
BLOCK = re.compile(r"```(python|js)\n(.*?)```", re.DOTALL)
NAMED_FILE = re.compile(
    r"`?((?:workshop|orders|shop|core|payments|idempotency|observability|static|config)/[\w/.-]+\.(?:py|js))"
)
LINK = re.compile(r"\]\((\.\./\.\./[^)#]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_excerpt_is_in_the_file_named_before_it(page: Path) -> None:
    text = page.read_text()
    for match in BLOCK.finditer(text):
        named = NAMED_FILE.findall(text[: match.start()])
        assert named, f"{page.name}: an excerpt that names no file"
        source = {line.strip() for line in (ROOT / named[-1]).read_text().splitlines()}
        for line in match.group(2).splitlines():
            if line.strip() and line.strip() != "...":
                assert line.strip() in source, f"{page.name}: {line.strip()!r} is not in {named[-1]}"


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_linked_file_exists(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        assert (page.parent / target).resolve().exists(), f"{page.name} links to {target}, which is not there"
