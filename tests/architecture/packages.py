"""The import graph between the top-level packages, as grimp (import-linter's engine) builds it.

Every import counts, those inside functions too; `if TYPE_CHECKING:` imports do not (they never run), as in
the contracts of pyproject.toml. Run as a script (`python -m tests.architecture.packages`) it prints the
cycles of whatever packages are first on sys.path, one per line: the twin test runs it on a damaged copy.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def root_packages(root: Path = ROOT) -> list[str]:
    config = tomllib.loads((root / "pyproject.toml").read_text())
    packages: list[str] = config["tool"]["importlinter"]["root_packages"]
    return packages


def package_imports(packages: list[str]) -> dict[str, set[str]]:
    """Which top-level packages each one imports."""
    graph = grimp.build_graph(*packages, cache_dir=None, exclude_type_checking_imports=True)
    return {
        importer: {
            imported
            for imported in packages
            if imported != importer
            and graph.direct_import_exists(importer=importer, imported=imported, as_packages=True)
        }
        for importer in packages
    }


def cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of packages that import each other (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(package: str) -> None:
        index[package] = low[package] = len(index)
        stack.append(package)
        for imported in sorted(imports[package]):
            if imported not in index:
                visit(imported)
                low[package] = min(low[package], low[imported])
            elif imported in stack:
                low[package] = min(low[package], index[imported])
        if low[package] == index[package]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == package:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for package in sorted(imports):
        if package not in index:
            visit(package)
    return sorted(found)


if __name__ == "__main__":
    for cycle in cycles(package_imports(root_packages(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT))):
        print(" ".join(cycle))
