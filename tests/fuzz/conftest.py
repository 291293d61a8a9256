"""Fixtures for the outside checks, and the closing summary of what they ran."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core import signals
from django.db import close_old_connections

from tests.authorization.scene import Scene, build_scene
from tests.fuzz import stats


@pytest.fixture
def requests_keep_the_test_transaction() -> Iterator[None]:
    """Requests sent straight to the WSGI app (as schemathesis does) run in the test's own transaction.

    Django closes the connection at the start and end of every request (close_old_connections), which would
    end the test transaction; its own test client disconnects the same signal handlers for the same reason.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def live_app_env(**extra: str) -> dict[str, str]:
    """Environment for a gunicorn a test starts: this run's test database (through PgBouncer) and Redis."""
    database = settings.DATABASES["default"]
    return {
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        **extra,
    }


@pytest.fixture
def scene(db: None) -> Scene:
    """alice (customer) with orders, bob, staff with and without grants, products (tests/authorization/scene.py)."""
    return build_scene()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in stats.summary_lines():
        terminalreporter.write_line(line)
