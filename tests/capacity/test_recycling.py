"""gunicorn's workers retire after max_requests one at a time, never together (core/recycling.py).

A real gunicorn with three workers and a small `max_requests` without jitter, so that all three reach it within
one burst of requests. Each worker holds idle kept-alive connections, so a retiring worker lingers (gunicorn waits
up to 2 s for them) and a retirement lasts long enough to overlap another's. The workers log when they stop
taking connections and when they leave; with the rule no two of those spans overlap, and the twin without it
has workers away at the same time (under load: no worker taking connections for seconds).
"""

from __future__ import annotations

import itertools
import re
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from tests.capacity.infra import AppServer, wait_until

MAX_REQUESTS = 20
STOPS = re.compile(r"Worker (\d+) stops taking connections at ([\d.]+)")
LEAVES = re.compile(r"Worker (\d+) leaves at ([\d.]+)")


@contextmanager
def idle_kept_alive_connections(server: AppServer, count: int) -> Iterator[None]:
    """`count` connections that each had one answer and stay open, spread over the workers by the kernel."""
    connections = []
    try:
        for _ in range(count):
            connection = socket.create_connection(("127.0.0.1", server.port))
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            connection.settimeout(10)
            assert connection.recv(4096).startswith(b"HTTP/1.1 200")
            connections.append(connection)
        yield
    finally:
        for connection in connections:
            connection.close()


def absences(log: str) -> dict[str, tuple[float, float]]:
    """pid -> (stopped taking connections, left), for each worker that has left."""
    stops = {pid: float(at) for pid, at in STOPS.findall(log)}
    return {pid: (stops[pid], float(at)) for pid, at in LEAVES.findall(log) if pid in stops}


def overlapping(spans: dict[str, tuple[float, float]]) -> list[tuple[str, str]]:
    ordered = sorted(spans.items(), key=lambda item: item[1][0])
    return [(a, b) for (a, (_, a_left)), (b, (b_stopped, _)) in itertools.pairwise(ordered) if b_stopped < a_left]


def _recycle(app_server_factory: Callable[..., AppServer], *, one_at_a_time: str, retirements: int) -> str:
    server = app_server_factory(
        GUNICORN_WORKERS="3",
        GUNICORN_THREADS="2",
        GUNICORN_MAX_REQUESTS=str(MAX_REQUESTS),
        GUNICORN_MAX_REQUESTS_JITTER="0",
        GUNICORN_KEEPALIVE="10",
        GUNICORN_LOG_LEVEL="info",
        GUNICORN_RECYCLE_ONE_AT_A_TIME=one_at_a_time,
    )

    def log() -> str:
        return server.log_path.read_text(errors="replace")

    def one_request(_: int) -> int:
        with server.client() as client:  # a new connection each time: the kernel hands them to every worker
            return client.get("/healthz").status_code

    with idle_kept_alive_connections(server, 15), ThreadPoolExecutor(max_workers=6) as pool:
        deadline = time.monotonic() + 60
        # Bursts until enough workers have retired (with the rule, each later one only after the one before left).
        while len(absences(log())) < retirements and time.monotonic() < deadline:
            statuses = list(pool.map(one_request, range(60)))
            assert set(statuses) == {200}, statuses  # a retiring worker never costs a request
        wait_until(lambda: len(absences(log())) >= retirements, timeout_s=10, every_s=0.2)
        return log()


def test_workers_past_max_requests_retire_one_at_a_time(app_server_factory: Callable[..., AppServer]) -> None:
    log = _recycle(app_server_factory, one_at_a_time="true", retirements=2)

    spans = absences(log)
    assert len(spans) >= 2, log
    assert overlapping(spans) == [], f"workers away at the same time: {spans}"
    assert "postpones its retirement: a sibling is retiring" in log  # the others waited their turn


def test_twin_without_the_rule_workers_retire_together(app_server_factory: Callable[..., AppServer]) -> None:
    log = _recycle(app_server_factory, one_at_a_time="false", retirements=2)

    spans = absences(log)
    assert len(spans) >= 2, log
    assert overlapping(spans), f"no two retirements overlapped: {spans}"
    assert "postpones its retirement" not in log
