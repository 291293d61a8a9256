"""The app reaches PostgreSQL only through PgBouncer, with the role's timeouts in force."""

from __future__ import annotations

import dj_database_url
import pytest
from django.conf import settings
from django.db import connection

from tests.capacity.infra import pgbouncer_show

pytestmark = pytest.mark.django_db


def _pgbouncer_server_ports() -> set[int]:
    return {int(server["local_port"]) for server in pgbouncer_show("SERVERS")}


def test_the_app_session_is_a_pgbouncer_server_connection():
    assert int(connection.settings_dict["PORT"]) == int(dj_database_url.parse(settings.DATABASE_URL)["PORT"])
    with connection.cursor() as cursor:
        # The backend serving this query sees PgBouncer's side of the socket as its client.
        cursor.execute("SELECT inet_client_port()")
        (client_port,) = cursor.fetchone()
    assert client_port in _pgbouncer_server_ports()


def test_role_timeouts_are_in_force_through_the_pooler():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), "
            "current_setting('idle_in_transaction_session_timeout')"
        )
        statement_timeout, lock_timeout, idle_timeout = cursor.fetchone()
    assert (statement_timeout, lock_timeout, idle_timeout) != ("0", "0", "0")
    assert statement_timeout == "5s"
