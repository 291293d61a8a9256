"""The real shop imports nothing from the workshop: import-linter's forbidden contract, and its twin.

The twin copies the project, adds one forbidden import to a real-shop module, and shows `lint-imports` (what
`make lint` runs) failing on exactly that import, so the green run above is known to be able to fail.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = ROOT / ".venv" / "bin" / "lint-imports"
CONTRACT = "The real shop never imports the workshop"
SKIP = shutil.ignore_patterns(
    ".venv", ".tools", ".git", ".run", ".mypy_cache", ".ruff_cache", "test-artifacts", "results", "staticfiles",
    "__pycache__", "node_modules",
)  # fmt: skip


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_shop_keeps_the_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{CONTRACT} KEPT" in result.stdout


def test_twin_a_shop_module_that_imports_the_workshop_breaks_the_build(tmp_path: Path) -> None:
    copy = tmp_path / "shop-copy"
    shutil.copytree(ROOT, copy, ignore=SKIP)
    target = copy / "orders" / "selectors.py"
    # An import inside a function counts too: the graph has every import statement, wherever it is.
    target.write_text(
        target.read_text() + "\n\ndef _peek():\n    from workshop.twins import races\n\n    return races\n"
    )

    result = lint_imports(copy)

    assert result.returncode == 1, result.stdout
    assert f"{CONTRACT} BROKEN" in result.stdout
    assert "orders.selectors -> workshop.twins.races" in result.stdout
