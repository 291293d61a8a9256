"""Fixtures for capacity and fault tests: a private pool role, private PgBouncers and a private Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings

from tests.capacity.infra import AppServer, PrivatePgBouncer, PrivateRedis, pool_role_create, superuser_connection

# The private role's statement_timeout: short, so the slow-query test waits one second, not five.
POOL_ROLE_STATEMENT_TIMEOUT = "1s"
# Stands in for PostgreSQL's max_connections in the "no pooling" twin (the shared server's real limit is
# never approached).
POOL_ROLE_CONNECTION_LIMIT = 12


@pytest.fixture(scope="session")
def pool_role(django_db_setup: None) -> Iterator[str]:
    database = str(settings.DATABASES["default"]["NAME"])
    role = f"{database}_pool"
    pool_role_create(
        role=role,
        database=database,
        statement_timeout=POOL_ROLE_STATEMENT_TIMEOUT,
        connection_limit=POOL_ROLE_CONNECTION_LIMIT,
    )
    yield role
    with superuser_connection() as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def pgbouncer_factory(pool_role: str) -> Iterator[Callable[..., PrivatePgBouncer]]:
    started: list[PrivatePgBouncer] = []

    def start(*, pool_size: int = 4, query_wait_timeout_s: int = 2) -> PrivatePgBouncer:
        bouncer = PrivatePgBouncer(
            database=str(settings.DATABASES["default"]["NAME"]),
            role=pool_role,
            pool_size=pool_size,
            query_wait_timeout_s=query_wait_timeout_s,
        )
        started.append(bouncer)
        bouncer.start()
        return bouncer

    yield start
    for bouncer in started:
        bouncer.cleanup()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_at(settings: Any) -> Callable[[str], None]:
    """Point the cache, the throttles, the breaker and the broker at another Redis for one test."""

    def point(url: str) -> None:
        settings.REDIS_URL = url
        settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": url}}
        settings.CELERY_BROKER_URL = url

    return point


@pytest.fixture
def app_server_factory() -> Iterator[Callable[..., AppServer]]:
    servers: list[AppServer] = []

    def start(**env: str) -> AppServer:
        server = AppServer(env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
