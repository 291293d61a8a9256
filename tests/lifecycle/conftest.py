"""Fixtures for the lifecycle model, and the figures it prints at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.capacity.infra import ProviderSimulator
from tests.lifecycle.figures import FIGURES
from tests.lifecycle.model import fuzz_level, rerun_command


@pytest.fixture(scope="session")
def lifecycle_provider() -> Iterator[ProviderSimulator]:
    server = ProviderSimulator()
    yield server
    server.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES.examples:
        return
    terminalreporter.write_sep("-", "lifecycle model")
    for line in FIGURES.lines(level=fuzz_level(), command=rerun_command()):
        terminalreporter.write_line(line)
