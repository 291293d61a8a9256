"""Counts the authorization matrix cells and prints the total at the end of every run that included them."""

from __future__ import annotations

from typing import Any

import pytest

_MATRIX = "tests/authorization/test_matrix.py::test_cell"
_outcomes: dict[str, int] = {"passed": 0, "failed": 0, "skipped": 0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.nodeid.startswith(_MATRIX):
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _outcomes[report.outcome] = _outcomes.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    checked = sum(_outcomes.values())
    if checked:
        terminalreporter.write_line(
            f"authorization matrix: {checked} cells checked "
            f"({_outcomes['passed']} passed, {_outcomes['failed']} failed, {_outcomes['skipped']} skipped)"
        )
