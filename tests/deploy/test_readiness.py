"""Readiness that fits an orchestrator, against a real gunicorn with its own Redis and PgBouncer.

/readyz/serving (the Kubernetes readiness probe and the compose healthcheck) follows the database path only:
a Redis outage is the same for every pod, so it must not take every pod out of the Service at once (the shop
degrades instead: cache misses, fail-open writes, PostgreSQL sessions). The deep /readyz keeps its contract and
names the cache and broker, and the alerts read its gauge. The database path failing does fail the serving
check, so the probe still takes a pod that cannot serve out of rotation.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings

from tests.capacity.infra import AppServer, PrivatePgBouncer, PrivateRedis

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_redis_down_fails_the_deep_check_but_not_the_serving_check(
    app_server_factory: Callable[..., AppServer], private_redis: PrivateRedis
) -> None:
    database = settings.DATABASES["default"]
    server = app_server_factory(
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        REDIS_URL=private_redis.url(0),
    )
    http = server.client()
    assert http.get("/readyz/serving").status_code == 200
    assert http.get("/readyz").status_code == 200

    private_redis.stop()

    serving = http.get("/readyz/serving")
    assert serving.status_code == 200, serving.text
    assert serving.json()["checks"] == {"database": "ok"}
    deep = http.get("/readyz")
    assert deep.status_code == 503
    assert deep.headers["Content-Type"] == "application/problem+json"
    assert deep.json()["checks"]["cache"] != "ok" and deep.json()["checks"]["broker"] != "ok"
    assert "cache" in deep.json()["detail"] and "broker" in deep.json()["detail"]


def test_the_database_path_down_fails_the_serving_check_naming_it(
    app_server_factory: Callable[..., AppServer], pgbouncer_factory: Callable[..., PrivatePgBouncer], pool_role: str
) -> None:
    bouncer = pgbouncer_factory(pool_size=2, query_wait_timeout_s=2)
    server = app_server_factory(
        DATABASE_URL=f"postgres://{pool_role}@127.0.0.1:{bouncer.port}/{bouncer.database}",
        REDIS_URL=settings.REDIS_URL,
    )
    http = server.client()
    assert http.get("/readyz/serving").status_code == 200

    bouncer.stop()

    serving = http.get("/readyz/serving")
    assert serving.status_code == 503
    assert serving.headers["Content-Type"] == "application/problem+json"
    assert int(serving.headers["Retry-After"]) >= 1
    assert serving.json()["code"] == "service_unavailable"
    assert serving.json()["checks"]["database"] != "ok"
    assert serving.json()["detail"] == "Failing: database."


@pytest.mark.parametrize("demo_mode", [True, False])
def test_readiness_reports_the_demo_mode(client, settings, demo_mode: bool) -> None:
    settings.DEMO_MODE = demo_mode
    for path in ("/readyz", "/readyz/serving"):
        response = client.get(path)
        assert response.status_code == 200, response.content
        assert response.json()["demo_mode"] is demo_mode
