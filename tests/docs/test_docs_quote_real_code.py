"""The docs quote only code that exists.

People copy from docs/patterns/ and teach from docs/workshop/, so a quote of renamed code is a lesson in code
nobody can find. Two checks, both resolved against the repository itself (files on disk, names through `ast`):

1. Every ```python excerpt names its file on its first line (`# orders/services.py`, optionally followed by
   `, name` or `: a remark`), and its lines are still in that file: each run of lines between elisions (a line
   that is only `...` or `# ...`) appears there contiguously, with the same indentation (uniformly dedented
   excerpts are allowed). A name after the file (`# mail/services.py, outbox_enqueue`) must be defined in it.
2. Every code name in backticks exists: a path (`orders/services.py`, `tests/orders/test_races.py::test_x`), a
   dotted name (`payments.client.read_charge`, `Order.request_fingerprint`), a call (`order_cancel(...)`) or an
   identifier that reads as code (`order_for_key`, `InsufficientStock`, `test_twin_...`). Markdown links to
   files in the repository must lead somewhere too.

Each failure names the doc, the line and the name, so when code moves the message says which line to fix.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted(
    [
        *(ROOT / "docs" / "patterns").glob("*.md"),
        *(ROOT / "docs" / "workshop").glob("*.md"),
        ROOT / "docs" / "architecture.md",
        ROOT / "docs" / "conventions.md",
        ROOT / "docs" / "api-contract.md",
        ROOT / "README.md",
    ]
)
SKIPPED_DIRS = {".git", ".venv", ".tools", ".run", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
HERE = Path(__file__).resolve().parent  # this test names missing code on purpose; it is not the code
# Configuration and front-end files name things the docs explain too (alert names, PgBouncer and Celery
# settings, environment variables, JavaScript functions); their words count as names, the docs' own do not.
CONFIG_SUFFIXES = {".yml", ".yaml", ".sh", ".js", ".html", ".ini", ".toml", ".conf", ".cfg", ".txt", ".json", ".css"}
CONFIG_NAMES = {"Makefile", "Procfile", "Dockerfile"}
TEMPLATE_ROOTS = [ROOT / "templates", *ROOT.glob("*/templates")]

FENCE = re.compile(r"^```(?P<lang>\w*)\s*$")
FIRST_LINE = re.compile(r"^# (?P<path>[\w./-]+\.py)(?:(?:, | \()(?P<name>[A-Za-z_][\w.]*))?")
ELISION = re.compile(r"^\s*(?:#\s*)?\.\.\.\s*$")
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?:#[^)]*)?\)")
IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
CALL = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)\(.*\)$")
PATH = re.compile(r"^[\w.-]+(?:/[\w.*-]*)+(?:::[\w:\[\]-]+)?$")

# Words in backticks that read like code names but name no Python object: Django's and the standard library's
# own names, SQL, HTTP and settings vocabulary that the docs explain. Keep it short; a repository name belongs in
# the repository, not here.
NOT_OURS = {
    "DoesNotExist",
    "QuerySet",
    "on_commit",
    "select_for_update",
    "select_related",
    "prefetch_related",
    "bulk_create",
    "lock_timeout",
    "statement_timeout",
    "idle_in_transaction_session_timeout",
    "max_client_conn",
    "default_pool_size",
    "pool_mode",
    "server_reset_query",
    "ATOMIC_REQUESTS",
    "CONN_MAX_AGE",
    "CONN_HEALTH_CHECKS",
    "DISABLE_SERVER_SIDE_CURSORS",
    "date_hierarchy",  # Django admin's option, named for its absence
    # schemathesis' checks, which the fuzz tests run by name through its configuration.
    "ignored_auth",
    "not_a_server_error",
    "status_code_conformance",
    "response_headers_conformance",
}
# Attributes every Django model (or queryset) has without the repository defining them.
MODEL_ATTRIBUTES = {"objects", "pk", "id", "DoesNotExist", "save", "delete", "refresh_from_db", "full_clean", "Meta"}


@dataclass(frozen=True)
class Excerpt:
    doc: Path
    line: int  # 1-based line of the first code line (the file comment) in the doc
    lines: tuple[str, ...]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _repo_files(pattern: str) -> Iterator[Path]:
    for path in ROOT.rglob(pattern):
        if not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts) and HERE not in path.parents:
            yield path


def _python_files() -> Iterator[Path]:
    yield from _repo_files("*.py")


@functools.cache
def _ignored_by_git() -> tuple[str, ...]:
    """Directories the shop writes at run time (.run/, test-artifacts/): named by the docs, never committed."""
    lines = (ROOT / ".gitignore").read_text().splitlines()
    return tuple(line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith(("#", "*")))


@functools.cache
def _tree(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(), filename=str(path))
    except (SyntaxError, UnicodeDecodeError):
        return None


@dataclass
class CodeIndex:
    names: set[str]  # every def, class, assigned name, attribute, argument and identifier-like string
    strings: set[str]  # every string constant (permission codenames such as "orders.fulfil_centre_orders")
    classes: dict[str, list[tuple[ast.ClassDef, Path]]]
    modules: dict[str, Path]  # "payments.client" -> payments/client.py


@functools.cache
def _index() -> CodeIndex:
    index = CodeIndex(names=set(), strings=set(), classes={}, modules={})
    for path in _repo_files("*"):
        if path.is_file() and (CONFIG_SUFFIXES.intersection(path.suffixes) or path.name in CONFIG_NAMES):
            index.names.update(re.findall(r"[A-Za-z_]\w*", path.read_text(errors="replace")))
    for path in _python_files():
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            index.modules[".".join(parts)] = path
        tree = _tree(path)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                index.names.add(node.name)
            elif isinstance(node, ast.ClassDef):
                index.names.add(node.name)
                index.classes.setdefault(node.name, []).append((node, path))
            elif isinstance(node, ast.Name | ast.arg):
                name = node.id if isinstance(node, ast.Name) else node.arg
                index.names.add(name)
                # Celery reads the setting CELERY_BROKER_CONNECTION_TIMEOUT as broker_connection_timeout.
                if name.startswith("CELERY_"):
                    index.names.add(name.removeprefix("CELERY_").lower())
            elif isinstance(node, ast.Attribute):
                index.names.add(node.attr)
            elif isinstance(node, ast.keyword) and node.arg:
                index.names.add(node.arg)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                index.strings.add(node.value)
                # Error codes, statuses, settings read from the environment: the code names them as strings.
                for word in re.findall(r"[A-Za-z_][\w]*", node.value):
                    index.names.add(word)
    return index


def _defined_at_top(path: Path) -> set[str]:
    tree = _tree(path)
    names: set[str] = set()
    for node in tree.body if tree else []:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _class_members(node: ast.ClassDef) -> set[str]:
    members: set[str] = set()
    for statement in node.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            members.add(statement.name)
        elif isinstance(statement, ast.Assign):
            members.update(t.id for t in statement.targets if isinstance(t, ast.Name))
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            members.add(statement.target.id)
    # Members set in methods (self.x = ...) and enum-like choices are members too.
    for sub in ast.walk(node):
        on_self = isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id in {"self", "cls"}
        if on_self and isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store):
            members.add(sub.attr)
    return members


def _class_has(class_name: str, member: str, seen: frozenset[str] = frozenset()) -> bool | None:
    """True/False if the repository defines the class; None if it does not (not ours to check)."""
    candidates = _index().classes.get(class_name)
    if not candidates:
        return None
    for node, _path in candidates:
        if member in _class_members(node):
            return True
        for base in node.bases:
            base_name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
            if base_name and base_name not in seen and _class_has(base_name, member, seen | {class_name}):
                return True
            if base_name in {"TextChoices", "IntegerChoices", "Choices"}:
                return True  # the members are the choices, spelled in too many ways to list
            if base_name == "Model" and member in MODEL_ATTRIBUTES:
                return True
    return False


def _resolve_dotted(name: str) -> str | None:
    """None when the dotted name resolves (or is not ours to check); otherwise why it does not."""
    index = _index()
    if name in index.strings:
        return None  # a permission ("orders.fulfil_centre_orders") or a dotted setting the code spells out
    parts = name.split(".")
    # Longest module prefix: payments.simulator.replay_status_code, idempotency.tasks.idempotency_purge_task.
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        if module in index.modules:
            rest = parts[cut:]
            if not rest:
                return None
            path = index.modules[module]
            if rest[0] not in _defined_at_top(path):
                return f"{module} ({_rel(path)}) defines no {rest[0]!r}"
            if len(rest) > 1:
                found = _class_has(rest[0], rest[1])
                if found is False:
                    return f"{rest[0]} has no member {rest[1]!r}"
            return None
    found = _class_has(parts[0], parts[1])
    if found is False:
        return f"{parts[0]} (a class of ours) has no member {parts[1]!r}"
    return None  # request.user, transaction.on_commit, settings.X: not a name this repository defines


def _looks_like_code(word: str) -> bool:
    """snake_case with an underscore, CamelCase with a hump, or CONSTANT_CASE: a name, not an English word."""
    return "_" in word.strip("_") or word.startswith("_") or bool(re.search(r"[a-z][A-Z]", word))


def _resolve_path(token: str, doc: Path) -> str | None:
    path_part, _, test_name = token.partition("::")
    if "..." in path_part or "*" in path_part or "<" in path_part:
        return None  # a pattern (`tests/.../test_x.py`), not a path
    prefixes = ["/".join(path_part.split("/")[:n]) for n in range(1, path_part.count("/") + 1)]
    if path_part.startswith(_ignored_by_git()) or any((ROOT / p / ".gitignore").exists() for p in prefixes):
        return None  # written at run time (.run/mail/, test-artifacts/screenshots/)
    candidates = [ROOT / path_part, doc.parent / path_part, *(root / path_part for root in TEMPLATE_ROOTS)]
    target = next((c for c in candidates if c.exists()), None)
    if target is None:
        return f"no file or directory {path_part!r}"
    if test_name:
        tree = _tree(target) if target.suffix == ".py" else None
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)} if tree else set()
        for piece in test_name.split("::"):
            piece = piece.split("[")[0]
            if piece not in defined:
                return f"{path_part} defines no {piece!r}"
    return None


def _resolve_token(token: str, doc: Path) -> str | None:
    token = token.strip()
    if PATH.match(token) and not token.startswith(("http", "/")):
        if "." in token.rsplit("/", 1)[-1].split("::")[0] or token.endswith("/") or "::" in token:
            return _resolve_path(token, doc)
        return None  # `orders/0003`, `app/name`: shorthand, not a path
    call = CALL.match(token)
    if call:
        token = call["name"]
    if DOTTED.match(token):
        if re.fullmatch(r"[\w-]+\.(py|md|toml|yml|yaml|json|txt|html|js|css|cfg|ini|lock|sh|eml)", token):
            return _resolve_path(token, doc) if (ROOT / token).exists() or "/" in token else None
        return _resolve_dotted(token)
    if IDENTIFIER.match(token) and _looks_like_code(token) and token not in NOT_OURS | _index().names:
        return "no function, class or name of that spelling anywhere in the code"
    return None


def _prose_lines(doc: Path) -> Iterator[tuple[int, str]]:
    """The doc's lines outside fenced blocks, numbered from 1."""
    inside = False
    for number, line in enumerate(doc.read_text().splitlines(), start=1):
        if line.startswith("```"):
            inside = not inside
            continue
        if not inside:
            yield number, line


def _excerpts(doc: Path) -> Iterator[Excerpt]:
    lines = doc.read_text().splitlines()
    number = 0
    while number < len(lines):
        fence = FENCE.match(lines[number])
        if fence is None:
            number += 1
            continue
        start = number + 1
        end = start
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if fence["lang"] == "python":
            yield Excerpt(doc=doc, line=start + 1, lines=tuple(lines[start:end]))
        number = end + 1


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _find_run(run: list[str], source: list[str]) -> bool:
    """The run's lines, in order and contiguous, somewhere in source, shifted by one constant indentation."""
    first = run[0]
    for start, candidate in enumerate(source):
        if candidate.strip() != first.strip() or start + len(run) > len(source):
            continue
        shift = _indent(candidate) - _indent(first)
        if shift < 0:
            continue
        if all(
            (not wanted.strip() and not got.strip()) or got.rstrip() == " " * shift + wanted.rstrip()
            for wanted, got in zip(run, source[start : start + len(run)], strict=True)
        ):
            return True
    return False


def _first_mismatch(run: list[str], source: list[str]) -> int:
    """How many leading lines of the run are in the source: the next line is the one to look at."""
    low = 1
    while low < len(run) and _find_run(run[: low + 1], source):
        low += 1
    return low if _find_run(run[:1], source) else 0


def _excerpt_problems(excerpt: Excerpt) -> list[str]:
    where = f"{_rel(excerpt.doc)}:{excerpt.line}"
    header = FIRST_LINE.match(excerpt.lines[0]) if excerpt.lines else None
    if header is None:
        return [f"{where}: a python excerpt must name its file on its first line, e.g. '# orders/services.py'"]
    path = ROOT / header["path"]
    if not path.is_file():
        return [f"{where}: the excerpt names {header['path']}, which does not exist"]
    problems = []
    if header["name"]:
        name = header["name"]
        top = name.split(".")[0]
        if top not in _defined_at_top(path) and ("." not in name or _class_has(top, name.split(".")[1]) is not True):
            problems.append(f"{where}: {header['path']} defines no {name!r}, which the excerpt names")
    source = path.read_text().splitlines()
    run: list[str] = []
    run_start = excerpt.line + 1

    def check(run: list[str], run_start: int) -> None:
        while run and not run[-1].strip():
            run.pop()
        while run and not run[0].strip():
            run.pop(0)
            run_start += 1
        if run and not _find_run(run, source):
            good = _first_mismatch(run, source)
            problems.append(
                f"{_rel(excerpt.doc)}:{run_start + good}: this line of the excerpt from {header['path']} is not "
                f"there (or not after the line before it): {run[good].strip()!r}"
            )

    for offset, line in enumerate(excerpt.lines[1:], start=excerpt.line + 1):
        if ELISION.match(line):
            check(run, run_start)
            run, run_start = [], offset + 1
        else:
            run.append(line)
    check(run, run_start)
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=[_rel(doc) for doc in DOCS])
def test_every_python_excerpt_names_its_file_and_is_still_there(doc: Path) -> None:
    problems = [problem for excerpt in _excerpts(doc) for problem in _excerpt_problems(excerpt)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS, ids=[_rel(doc) for doc in DOCS])
def test_every_name_in_backticks_and_every_link_exists(doc: Path) -> None:
    problems = []
    for number, line in _prose_lines(doc):
        for match in INLINE_CODE.finditer(line):
            why = _resolve_token(match[1], doc)
            if why:
                problems.append(f"{_rel(doc)}:{number}: `{match[1]}`: {why}")
        for link in LINK.finditer(line):
            target = link["target"]
            if target.startswith(("http:", "https:", "mailto:")) or target.startswith("/"):
                continue
            if not (doc.parent / target).exists():
                problems.append(f"{_rel(doc)}:{number}: the link ({target}) leads nowhere")
    assert not problems, "\n".join(problems)


def test_the_pages_of_the_outside_checks_have_a_how_we_know_section() -> None:
    names = {doc.name for doc in DOCS if "## How we know" in doc.read_text()}
    assert {"02-n-plus-one.md", "04-authorization.md", "05-frontend-state.md", "06-observability.md"} <= names


def test_the_checks_can_fail() -> None:
    """Twin: a renamed function, a moved file, a changed line and an unnamed excerpt are each caught."""
    doc = ROOT / "docs" / "patterns" / "01-race-conditions.md"
    assert _resolve_token("_is_idempotency_violation", doc)  # renamed long ago (issue 13)
    assert _resolve_token("orders/no_such_module.py", doc)
    assert _resolve_token("tests/orders/test_races.py::test_that_was_never_written", doc)
    assert _resolve_token("payments.client.no_such_function", doc)
    assert _resolve_token("Order.is_a_member_nobody_defined", doc)
    assert _resolve_token("order_cancel", doc) is None
    assert _resolve_token("orders.services.order_cancel", doc) is None
    changed = Excerpt(
        doc=doc, line=1, lines=("# orders/services.py", "def order_cancel(*, a_signature_never_written):")
    )
    assert _excerpt_problems(changed)
    unnamed = Excerpt(doc=doc, line=1, lines=("def order_cancel():",))
    assert _excerpt_problems(unnamed)
    definitions = [line for line in (ROOT / "mail/services.py").read_text().splitlines() if line.startswith("def ")]
    elided = Excerpt(doc=doc, line=1, lines=("# mail/services.py", definitions[0], "...", definitions[-1]))
    assert not _excerpt_problems(elided)
    assert _excerpt_problems(Excerpt(doc=doc, line=1, lines=("# mail/services.py", definitions[-1], definitions[0])))
