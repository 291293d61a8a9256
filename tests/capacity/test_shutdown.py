"""SIGTERM drains gunicorn: an in-flight request finishes, then the process exits cleanly."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.conf import settings

from tests.capacity.infra import AppServer, sleeping_queries, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def _start_slow_request(
    app_server_factory: Callable[..., AppServer], *, graceful_timeout_s: int
) -> tuple[AppServer, threading.Thread, list[Any]]:
    database = settings.DATABASES["default"]
    server = app_server_factory(
        DJANGO_SETTINGS_MODULE="tests.capacity.settings_slow_routes",
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        GUNICORN_GRACEFUL_TIMEOUT=str(graceful_timeout_s),
    )
    answers: list[Any] = []

    def slow_request() -> None:
        with server.client() as http:
            try:
                answers.append(http.get("/api/_test/slow-query/?seconds=2&timeout=off").status_code)
            except httpx.HTTPError as error:
                answers.append(type(error).__name__)

    in_flight = threading.Thread(target=slow_request)
    in_flight.start()
    # The request is inside the database (not merely sent) before the signal goes out.
    assert wait_until(lambda: sleeping_queries(str(database["NAME"])) == 1, timeout_s=30, every_s=0.05)
    return server, in_flight, answers


def test_sigterm_lets_the_in_flight_request_finish_then_exits(app_server_factory: Callable[..., AppServer]) -> None:
    server, in_flight, answers = _start_slow_request(app_server_factory, graceful_timeout_s=20)
    server.process.send_signal(signal.SIGTERM)
    in_flight.join(timeout=30)
    assert answers == [200]
    assert server.process.wait(timeout=30) == 0


def test_twin_without_a_drain_window_the_in_flight_request_is_cut_off(
    app_server_factory: Callable[..., AppServer],
) -> None:
    """graceful_timeout 0: SIGTERM kills the workers at once, which is what a deploy that does not drain
    (or an orchestrator whose kill timeout is shorter than the longest request) looks like to the customer."""
    server, in_flight, answers = _start_slow_request(app_server_factory, graceful_timeout_s=0)
    server.process.send_signal(signal.SIGTERM)
    in_flight.join(timeout=30)
    assert answers != [200]
    assert len(answers) == 1
