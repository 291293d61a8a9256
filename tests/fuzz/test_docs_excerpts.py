"""The "How we know" sections of docs/patterns/ quote code that exists: each excerpt names its file on its
first line (`# core/middleware.py`) and must appear there, line for line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs" / "patterns").glob("0*.md"))
BLOCK = re.compile(r"```python\n# (?P<path>[\w./-]+\.py)\n(?P<code>.*?)```", re.DOTALL)


def _how_we_know(page: Path) -> str:
    text = page.read_text()
    return text.split("## How we know", 1)[1] if "## How we know" in text else ""


def test_the_pages_of_the_outside_checks_have_a_how_we_know_section() -> None:
    names = {page.name for page in PAGES if _how_we_know(page)}
    assert {"02-n-plus-one.md", "04-authorization.md", "05-frontend-state.md", "06-observability.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_excerpt_is_in_the_file_it_names(page: Path) -> None:
    for block in BLOCK.finditer(_how_we_know(page)):
        source = (ROOT / block["path"]).read_text()
        assert block["code"].rstrip("\n") in source, f"{page.name}: the excerpt from {block['path']} is not there"
