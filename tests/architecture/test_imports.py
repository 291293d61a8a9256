"""Dependencies one way, checked by the build: the import contracts of pyproject.toml hold (`make lint` runs
lint-imports), a forbidden import breaks them, and the top-level packages form no import cycle.

The twins run on a copy of the source with one bad import added, so the real tree is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.architecture.packages import ROOT, cycles, package_imports, root_packages

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# A bottom-layer module reaching up into an app: what the layers contract exists to refuse.
BAD_IMPORT = "core/reaches_up.py", "from orders.models import Order\n\n__all__ = ['Order']\n"


@pytest.fixture
def source_copy(tmp_path: Path) -> Iterator[Path]:
    """The project's packages and pyproject.toml, copied: a tree the test may damage."""
    copy = tmp_path / "src"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    for package in root_packages():
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__", "*.html", "*.js", "*.css")
        )
    yield copy


def _lint_imports(source: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _cycles_of(source: Path) -> list[str]:
    # A fresh interpreter with the copy first on sys.path: grimp finds the copy's packages, not the real ones.
    result = subprocess.run(
        [sys.executable, "-m", "tests.architecture.packages", str(source)],
        cwd=source,  # `python -m` puts the working directory first on sys.path
        env={**os.environ, "PYTHONPATH": f"{source}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.splitlines()


def test_the_contracts_hold_on_an_untouched_copy(source_copy: Path) -> None:
    result = _lint_imports(source_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_twin_a_forbidden_import_fails_the_build(source_copy: Path) -> None:
    path, code = BAD_IMPORT
    (source_copy / path).write_text(code)

    result = _lint_imports(source_copy)

    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "core.reaches_up -> orders.models" in result.stdout


def test_the_top_level_packages_form_no_import_cycle() -> None:
    imports = package_imports(root_packages())
    assert cycles(imports) == []
    # The direction the layering is about: payments depends on orders, never the reverse.
    assert "orders" in imports["payments"]
    assert "payments" not in imports["orders"]


def test_twin_an_import_inside_a_function_still_makes_a_cycle(source_copy: Path) -> None:
    # Counting only top-of-module imports would miss this one: it hides inside a function.
    (source_copy / "core" / "reaches_up.py").write_text(
        "def order_model():\n    from orders.models import Order\n\n    return Order\n"
    )

    found = _cycles_of(source_copy)

    assert len(found) == 1, found
    assert {"core", "orders"} <= set(found[0].split())
