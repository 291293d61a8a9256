"""Timeouts: role-level settings that survive PgBouncer, and a slow query cancelled into a 503."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client

from tests.capacity.infra import PrivatePgBouncer, django_database_at


@pytest.mark.django_db
def test_the_app_role_carries_its_timeouts_through_transaction_pooling() -> None:
    """statement_timeout and friends are set on the role (deploy/postgres/roles.sql), not per session, so
    every pooled server connection has them whichever client it serves."""
    with connection.cursor() as cursor:
        settings_seen = set()
        for _ in range(5):
            cursor.execute(
                "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), "
                "current_setting('idle_in_transaction_session_timeout')"
            )
            settings_seen.add(cursor.fetchone())
    assert settings_seen == {("5s", "3s", "30s")}


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.capacity.urls")
def test_a_query_past_statement_timeout_is_cancelled_and_answered_503(
    pgbouncer_factory: Callable[..., PrivatePgBouncer], pool_role: str
) -> None:
    bouncer = pgbouncer_factory(pool_size=2)
    client = Client()
    with django_database_at(host="127.0.0.1", port=bouncer.port, user=pool_role):  # statement_timeout = 1s
        api = client.get("/api/_test/slow-query/?seconds=3")
        page = client.get("/_test/slow-query/?seconds=3", HTTP_ACCEPT="text/html")
        after = client.get("/api/_test/slow-query/?seconds=0")

    assert api.status_code == 503
    assert api["Content-Type"] == "application/problem+json"
    assert api["Retry-After"] == "5"
    assert api.json()["code"] == "service_unavailable"
    assert "cancelled" in api.json()["detail"]
    assert page.status_code == 503
    assert page["Retry-After"] == "5"
    assert b"cancelled" in page.content
    # The connection is usable again at once: the cancel ended the statement, not the session.
    assert after.status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.capacity.urls")
def test_twin_without_statement_timeout_the_slow_query_holds_the_worker_to_the_end(
    pgbouncer_factory: Callable[..., PrivatePgBouncer], pool_role: str
) -> None:
    bouncer = pgbouncer_factory(pool_size=2)
    with django_database_at(host="127.0.0.1", port=bouncer.port, user=pool_role):
        response = Client().get("/api/_test/slow-query/?seconds=1.5&timeout=off")
    assert response.status_code == 200  # nothing stopped it: a worker was held for the whole query
