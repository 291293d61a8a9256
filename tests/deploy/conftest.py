from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

# The capacity suite's private infrastructure (gunicorn, PgBouncer and Redis of the test's own).
from tests.capacity.conftest import app_server_factory, pgbouncer_factory, pool_role, private_redis  # noqa: F401


@pytest.fixture
def settings_production_like(settings: Any, db: None) -> Callable[..., None]:
    """Django's production security settings (config/settings.py) inside the test process."""

    def apply(**overrides: Any) -> None:
        settings.SECURE_SSL_REDIRECT = True
        settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        for name, value in overrides.items():
            setattr(settings, name, value)

    return apply
