"""A 413 closes the connection: the refused body is never read, so its bytes must not wait on a kept-alive socket.

BodySizeLimitMiddleware answers 413 from the Content-Length alone (core/middleware.py). On a kept-alive
connection the body the client is still sending would then be read by gunicorn as part of the next request.
config/gunicorn.conf.py's pre_request hook marks such a request, so gunicorn answers `Connection: close` and
closes the socket after the 413. Proven with a real gunicorn and a raw socket; the twin runs the same gunicorn
without the hook and shows the answer promising keep-alive, and the next request on that socket lost.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from django.conf import settings

from tests.capacity.infra import AppServer
from tests.fuzz.conftest import live_app_env

# The gunicorn commits what it writes (axes records the failed log-in): the database is emptied afterwards.
pytestmark = pytest.mark.django_db(transaction=True)

DECLARED = 10 * 1024 * 1024  # far over DATA_UPLOAD_MAX_MEMORY_SIZE (256 KiB)
SENT = 64 * 1024  # the client has started sending it


def _head(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[length:]


def _oversized_post(port: int) -> tuple[socket.socket, str, dict[str, str]]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"POST /api/v1/auth/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {DECLARED}\r\n\r\n".encode()
        + b"x" * SENT
    )
    status, headers, _ = _head(sock)
    return sock, status, headers


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        while True:
            if not sock.recv(65536):
                return True  # EOF: the server closed its side
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.fixture
def gunicorn() -> Iterator[AppServer]:
    server = AppServer(env=live_app_env())
    yield server
    server.stop()


@pytest.fixture
def gunicorn_without_the_hook() -> Iterator[AppServer]:
    server = AppServer(env=live_app_env(), config="tests/fuzz/gunicorn_without_close.py")
    yield server
    server.stop()


def test_a_413_says_connection_close_and_closes(gunicorn: AppServer) -> None:
    assert DECLARED > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    sock, status, headers = _oversized_post(gunicorn.port)
    with sock:
        assert status.split()[1] == "413"
        assert headers["content-type"] == "application/problem+json"
        assert headers["connection"] == "close"
        assert _closed_by_server(sock)


def test_a_body_within_the_limit_keeps_the_connection_alive(gunicorn: AppServer) -> None:
    with socket.create_connection(("127.0.0.1", gunicorn.port), timeout=10) as sock:
        body = b'{"username": "nobody", "password": "wrong"}'
        request = (
            b"POST /api/v1/auth/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        sock.sendall(request)
        status, headers, _ = _head(sock)
        assert (status.split()[1], headers["connection"]) == ("401", "keep-alive")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _head(sock)[0].split()[1] == "200"  # the same socket serves the next request


def test_twin_without_the_hook_the_413_promises_keep_alive_and_the_next_request_is_lost(
    gunicorn_without_the_hook: AppServer,
) -> None:
    sock, status, headers = _oversized_post(gunicorn_without_the_hook.port)
    with sock:
        assert status.split()[1] == "413"
        assert headers["connection"] == "keep-alive"  # the client believes it may send another request
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        # gunicorn takes those bytes for the rest of the unread body: the GET is never answered.
        sock.settimeout(10)
        try:
            answer = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            answer = b""
        assert b"200 OK" not in answer
