"""A kept-alive connection whose keep-alive ran out is closed only if it is idle: a request on it is served.

Under load the gthread worker's loop comes round late, and gunicorn's `murder_keepalived` closed every connection
whose keep-alive had run out meanwhile, also those whose client had just sent its next request. Closing a socket
with unread bytes makes the kernel answer with a reset: the client loses that request (57 in one stress run,
captured with tshark; loadtests/README.md). `QueueTimedThreadWorker.murder_keepalived` (core/shedding.py) hands
such a connection to the queue instead. The state it handles is built here with real sockets: a connection past
its keep-alive, with a request waiting on it, at the moment the loop comes round; the twin is gunicorn's own.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from gunicorn.workers.gthread import TConn, ThreadWorker

from core.shedding import QueueTimedThreadWorker

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: shop.test\r\n\r\n"


@dataclass
class KeptAlive:
    worker: Any
    conn: TConn
    client: socket.socket
    handed_on: list[TConn]


@contextmanager
def kept_alive_connection(worker_class: type[ThreadWorker], *, request: bytes | None) -> Iterator[KeptAlive]:
    """One accepted connection on a worker's keep-alive list, its keep-alive already over; `request` waiting on it.

    The worker is only what murder_keepalived touches (no arbiter, no process); enqueue_req records the hand-over.
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server_side, address = listener.accept()
        server_address = listener.getsockname()
    worker: Any = object.__new__(worker_class)
    handed_on: list[TConn] = []
    worker.keepalived_conns = deque()
    worker.poller = selectors.DefaultSelector()
    worker.nr_conns = 1
    worker.enqueue_req = handed_on.append
    conn = TConn(None, server_side, address, server_address)
    conn.timeout = time.monotonic() - 0.1  # GUNICORN_KEEPALIVE ran out 100 ms ago; the loop is only now here
    worker.keepalived_conns.append(conn)
    worker.poller.register(server_side, selectors.EVENT_READ, None)
    if request is not None:
        client.sendall(request)
        # The request has arrived on the server's socket (the loop did not see it: it was busy elsewhere).
        assert _arrived(server_side)
    client.settimeout(0.5)
    try:
        yield KeptAlive(worker=worker, conn=conn, client=client, handed_on=handed_on)
    finally:
        client.close()
        server_side.close()


def _arrived(sock: socket.socket, timeout_s: float = 2.0) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(timeout_s))


def test_a_request_that_arrived_as_the_keep_alive_ran_out_is_served_not_reset() -> None:
    with kept_alive_connection(QueueTimedThreadWorker, request=REQUEST) as kept:
        kept.worker.murder_keepalived()

        assert kept.handed_on == [kept.conn]  # queued for a thread, like any readable kept-alive connection
        assert not kept.worker.keepalived_conns
        assert kept.worker.nr_conns == 1
        with pytest.raises(TimeoutError):
            kept.client.recv(1)  # nothing came back yet: no reset, no close; the answer is the thread's to write


def test_twin_gunicorns_own_murder_resets_the_request_the_client_already_sent() -> None:
    with kept_alive_connection(ThreadWorker, request=REQUEST) as kept:
        kept.worker.murder_keepalived()

        assert kept.handed_on == []
        assert kept.worker.nr_conns == 0
        # Closed with the request unread: the kernel resets the connection, and the client loses the request.
        with pytest.raises(ConnectionResetError):
            kept.client.recv(1)


def test_an_idle_connection_whose_keep_alive_ran_out_is_still_closed() -> None:
    with kept_alive_connection(QueueTimedThreadWorker, request=None) as kept:
        kept.worker.murder_keepalived()

        assert kept.handed_on == []
        assert kept.worker.nr_conns == 0
        assert kept.client.recv(1) == b""  # an orderly close (FIN): the client opens a new connection
