"""Code excerpts for the teacher page, read from the source files every time: never a copy that can drift.

A reference names what to show:
    "orders.placement:order_place"      a Python function or class (inspect finds its file and lines)
    "static/js/shop.js#enhanceBusyForm" a JavaScript function, from `function name(` to its closing brace
    "config/settings.py@DATABASES"      a settings block: the comments above `NAME =` to the next blank line
A reference that no longer resolves (the code moved) is shown as such, and tests/workshop/test_modes.py fails.
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Excerpt:
    reference: str
    path: str  # relative to the repository
    first_line: int
    code: str
    found: bool = True

    @property
    def numbered(self) -> list[tuple[int, str]]:
        return list(enumerate(self.code.splitlines(), start=self.first_line))


class SourceNotFound(LookupError):
    pass


def _python(reference: str) -> Excerpt:
    module_name, _, qualname = reference.partition(":")
    target: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    target = inspect.unwrap(target)  # type: ignore[arg-type]  # a decorated view: its own file, not the decorator's
    lines, first = inspect.getsourcelines(target)  # type: ignore[arg-type]
    path = Path(inspect.getsourcefile(target) or "").resolve()  # type: ignore[arg-type]
    return Excerpt(reference, str(path.relative_to(ROOT)), first, "".join(lines).rstrip("\n"))


def _javascript(reference: str) -> Excerpt:
    relative, _, name = reference.partition("#")
    text = (ROOT / relative).read_text()
    match = re.search(rf"^[ \t]*function {re.escape(name)}\(", text, re.MULTILINE)
    if match is None:
        raise SourceNotFound(reference)
    depth, end = 0, None
    for index in range(text.index("{", match.end()), len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            end = index + 1
            break
    if end is None:
        raise SourceNotFound(reference)
    first = text.count("\n", 0, match.start()) + 1
    return Excerpt(reference, relative, first, _dedent(text[match.start() : end]))


def _block(reference: str) -> Excerpt:
    relative, _, name = reference.partition("@")
    lines = (ROOT / relative).read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"{name} =")), None)
    if start is None:
        raise SourceNotFound(reference)
    while start > 0 and lines[start - 1].startswith("#"):
        start -= 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return Excerpt(reference, relative, start + 1, "\n".join(lines[start:end]))


def _dedent(code: str) -> str:
    lines = code.splitlines()
    indent = min((len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()), default=0)
    closing = len(lines[0]) - len(lines[0].lstrip())
    cut = min(indent, closing) if len(lines) > 1 else closing
    return "\n".join(line[cut:] if line[:cut].isspace() or not line[:cut] else line for line in lines)


def excerpt(reference: str) -> Excerpt:
    """The excerpt a reference names; raises SourceNotFound (or ImportError/AttributeError) when it moved."""
    if "#" in reference:
        return _javascript(reference)
    if "@" in reference:
        return _block(reference)
    return _python(reference)


def excerpt_or_missing(reference: str) -> Excerpt:
    try:
        return excerpt(reference)
    except (SourceNotFound, ImportError, AttributeError, OSError, TypeError):
        return Excerpt(reference, "", 0, f"{reference} was not found: the code moved. Update workshop/modes.py.", False)


def file_excerpt(relative: str) -> Excerpt:
    """A whole twin file, as it is on disk right now (the fix-it track edits these)."""
    return Excerpt(relative, relative, 1, (ROOT / relative).read_text().rstrip("\n"))
