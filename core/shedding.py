"""Load shedding past the knee: a request that waited too long for a thread is refused at once, politely.

Past its knee a server without shedding queues: every request waits behind the ones before it, latency grows
for everybody, and clients time out on answers the server is still busy computing (measured here: the knee at
300 users, and at 400 users reads and writes waiting 2.8 s at p95). Shedding keeps the queue short instead. A
request that has already waited longer than `SHEDDING_MAX_QUEUE_MS` for a worker thread is answered 503 with
`Retry-After` (problem+json `overloaded` on the API, the 503 page for HTML) before any session, database or
template work; refusing costs well under a millisecond of the thread, so the queue drains and the requests
still admitted are served within their budget.

A new arrival is refused at the door, by a refusal thread of its own, at once instead of after the wait
(`QueueTimedThreadWorker.enqueue_req`), when its wait is already known to be too long: the queue stands (the
last request a thread took had waited too long, and others still wait), or the queue ahead of it would take
longer than the limit to clear (requests waiting, times how long a request has recently held a thread, over
the number of threads). Without the prediction, each new queue waited out the limit before it was refused:
measured under `make loadtest-stress`, a shed answer took ~530 ms.

A queue that stands is held to a much shorter wait (CoDel's rule, as Facebook's servers apply it to their
request queues): when the queue has not been empty for `SHEDDING_MAX_QUEUE_MS`, the load is not a burst that
will pass but more than the threads can serve, and a request that has waited longer than
`SHEDDING_STANDING_QUEUE_MS` is refused, at the door or when a thread takes it. Without it, every request
already queued waited out the whole limit before its refusal (measured: a shed answer's p95 700-930 ms under
`make loadtest-stress`). A burst still gets the long limit: the queue empties between bursts.

Whatever the limit, a request that has waited it is refused then (`SHEDDING_REAP_QUEUE`): a reaper thread takes
it back from the thread pool and a refusal thread answers it, instead of leaving it queued until a busy request
thread is free to refuse it.

How long a request waited is measured, not guessed:

- under gunicorn with `QueueTimedThreadWorker` (config/gunicorn.conf.py): from the moment the worker
  accepted the connection, or saw a kept-alive one become readable, to the moment a thread picked it up;
- behind a proxy that stamps `X-Request-Start: t=<epoch seconds>` (nginx: `t=${msec}`) and with
  `SHEDDING_TRUST_REQUEST_START=true`: from the proxy's stamp, which also counts the time in the proxy and in
  the listen backlog. Only trust it when the proxy overwrites the header: a client could send its own.

Health probes are never shed (`SHEDDING_EXEMPT_PATHS`): a liveness probe refused under load would get a busy
instance restarted, which makes the overload worse.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from gunicorn.workers.gthread import ThreadWorker

from core.metrics import record_shed
from core.problems import refusal_response
from core.recycling import OneAtATimeRecycling

Handler = Callable[[HttpRequest], HttpResponse]

# How often the reaper looks for requests that have waited their limit (only while requests wait).
REAP_EVERY_S = 0.01

# The worker thread that serves a request is the one that picked it up: the wait is handed over per thread.
_queue_wait = threading.local()


def measured_queue_wait_s() -> float | None:
    """How long the current request waited for this thread, if the server measured it."""
    return getattr(_queue_wait, "seconds", None)


def refused_by() -> str | None:
    """The server already decided to refuse this request, before any request thread took it: "door" (on arrival:
    a standing queue, or one predicted too long, see below) or "reaper" (it waited out its limit in the queue).
    None: a request thread took it, and the middleware judges its wait."""
    return getattr(_queue_wait, "refused_by", None)


def measured_queue_limit_s() -> float | None:
    """How long the current request was allowed to wait, if the server judged it (shorter while the queue stands)."""
    return getattr(_queue_wait, "limit_s", None)


class QueueTimedThreadWorker(OneAtATimeRecycling, ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, noting when each request was queued for a thread and when one took it.

    It also refuses at the door. While the queue is standing (requests are waiting, and the last one a thread
    took had waited longer than SHEDDING_MAX_QUEUE_MS), a request that arrives would only wait as long; it is
    handed to a refusal thread of its own instead of joining the queue, and answered 503 at once rather than
    after the wait. The queue empties, and the next arrivals are admitted again.

    Two more things gunicorn's worker did badly under load: it closed kept-alive connections whose client had
    just sent a request (`murder_keepalived` below), and all workers could retire at once (core/recycling.py).
    """

    def init_process(self) -> None:
        self.shop_waiting = 0  # requests queued for a request thread, not yet taken
        self.shop_standing_wait_s = 0.0  # how long the last request taken had waited, while others still wait
        self.shop_service_s = 0.0  # how long a request has recently held a thread (moving average)
        self.shop_served = 0  # requests this worker's threads have served (its pace means something after a few)
        self.shop_empty_at = time.monotonic()  # when the queue was last seen empty (CoDel's clock)
        self.shop_counts = threading.Lock()
        # More than one, so that one slow client (a refusal still waits for its request to arrive) does not block the
        # door; six, because past the knee refusals come in bursts (the reaper hands over every expired request at
        # once) and each waits for the GIL and a core several times: measured, 2 -> 6 threads took a door refusal's
        # wait from p50 18 / p95 115 ms to 8 / 68 ms (loadtests/README.md, "Fifth pass").
        self.shop_refusals = futures.ThreadPoolExecutor(
            max_workers=settings.SHEDDING_REFUSAL_THREADS, thread_name_prefix="refusal"
        )
        # The requests still waiting for a request thread, oldest first (conn -> its future in the thread pool).
        self.shop_queue: dict[Any, futures.Future[Any]] = {}
        self.shop_queue_busy = threading.Event()  # set while requests wait: the reaper sleeps otherwise
        self.shop_said_leaving = False
        if settings.SHEDDING_MAX_QUEUE_MS > 0 and settings.SHEDDING_REAP_QUEUE:
            threading.Thread(target=self._reap_forever, name="queue-reaper", daemon=True).start()
        super().init_process()  # runs the worker's loop: nothing after this line runs before it exits
        self.log.info("Worker %s leaves at %.6f", os.getpid(), time.time())

    def enqueue_req(self, conn: Any) -> None:
        conn.shop_queued_at = now = time.monotonic()
        with self.shop_counts:
            if self.shop_waiting == 0:
                self.shop_empty_at = now
            max_wait_s = self._queue_limit_s(now)
            at_door = max_wait_s > 0 and self.shop_waiting > 0 and self._wait_too_long(max_wait_s)
            if not at_door:
                self.shop_waiting += 1
                # gunicorn's own enqueue_req, keeping the future so that the reaper can take the request back.
                future = self.tpool.submit(self.handle, conn)
                self.shop_queue[conn] = future
                self.shop_queue_busy.set()
        if not at_door:
            future.add_done_callback(lambda done: self._request_done(conn, done))
            return
        self._refuse(conn, by="door")

    def murder_keepalived(self, force: bool = False) -> None:
        """gunicorn's, except that a kept-alive connection whose client has already sent its next request is served,
        not closed.

        gunicorn closes every connection whose keep-alive ran out since the worker's loop last came round, also one
        whose next request arrived in the meantime. Closed with that request unread, the kernel answers it with a
        reset and the client loses it. Idle, the loop comes round within microseconds; past the knee every step of
        it waits for the GIL and it comes round hundreds of milliseconds late (measured with tshark under `make
        loadtest-stress` at 600-700 users: 57 requests reset in 75 s, each 3-330 ms after it arrived on a
        connection idle just over GUNICORN_KEEPALIVE; with this, none)."""
        if force:
            super().murder_keepalived(force=True)  # the worker is stopping: every kept-alive connection goes
            return
        # gunicorn's loop, with the check right before each close (checked earlier, a request could still arrive
        # in between: each system call gives up the GIL, and under load getting it back takes milliseconds).
        now = time.monotonic()
        while self.keepalived_conns and self.keepalived_conns[0].timeout <= now:
            conn = self.keepalived_conns[0]
            if _readable(conn.sock):
                self.on_client_socket_readable(conn, conn.sock)  # off the keep-alive list, into the queue
                continue
            self.keepalived_conns.popleft()
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.poller.unregister(conn.sock)
            self.nr_conns -= 1
            conn.close()

    def _request_done(self, conn: Any, done: futures.Future[Any]) -> None:
        if not done.cancelled():  # a cancelled one was taken back by the reaper, which answers it itself
            self.method_queue.defer(self.finish_request, conn, done)

    def _refuse(self, conn: Any, *, by: str) -> None:
        """Answer `conn` 503 from a refusal thread, without waiting for a request thread; `by` names the rule."""
        conn.shop_refused_by = by
        refusal = self.shop_refusals.submit(self.handle, conn)
        refusal.add_done_callback(lambda done: self.method_queue.defer(self.finish_request, conn, done))

    def _reap_forever(self) -> None:
        """A request that has waited its limit is refused now, not when a thread finally takes it.

        Without this, a request refused for waiting too long still waited for a free request thread before the
        refusal could be written: with every thread busy for seconds, the 503 came seconds late (measured under
        `make loadtest-stress`: a shed answer's p95 700-900 ms, its queued_ms as long)."""
        while True:
            self.shop_queue_busy.wait()
            time.sleep(REAP_EVERY_S)
            for conn in self._take_back_expired(time.monotonic()):
                self._refuse(conn, by="reaper")

    def _take_back_expired(self, now: float) -> list[Any]:
        expired = []
        with self.shop_counts:
            limit_s = self._queue_limit_s(now)
            for conn, future in list(self.shop_queue.items()):
                if now - conn.shop_queued_at <= limit_s:
                    break  # oldest first: the rest waited less
                # False when a request thread has just taken it: that thread refuses it itself (handle below).
                if future.cancel():
                    del self.shop_queue[conn]
                    self.shop_waiting -= 1
                    expired.append(conn)
            if not self.shop_queue:
                self.shop_empty_at = now
                self.shop_queue_busy.clear()
        return expired

    def _queue_limit_s(self, now: float) -> float:
        """Under `shop_counts`: how long a request may wait now; 0 when shedding is off.

        CoDel's rule: a queue that has not been empty for the whole limit stands, and is held to the short
        target; a burst, which the queue clears between arrivals, keeps the long limit."""
        limit_s = settings.SHEDDING_MAX_QUEUE_MS / 1000
        standing_s = settings.SHEDDING_STANDING_QUEUE_MS / 1000
        interval_s = settings.SHEDDING_STANDING_AFTER_MS / 1000 or limit_s
        if limit_s > 0 and 0 < standing_s < limit_s and now - self.shop_empty_at > interval_s:
            return standing_s
        return limit_s

    def _wait_too_long(self, max_wait_s: float) -> bool:
        """Under `shop_counts`: would a request arriving now wait longer than the limit for a thread?"""
        if self.shop_standing_wait_s > max_wait_s:
            return True
        # Refused at a load the warm worker serves: a new worker's first requests are its slowest (connections
        # opened, caches cold), and a pace learned from them predicts waits that do not come (measured: a door
        # refusal 1.6 s into `make loadtest` at 100 users, with 0.2 ms in the queue). Predict once it has a pace.
        if self.shop_served < settings.SHEDDING_PREDICT_AFTER:
            return False
        # The queue ahead of it, cleared by every request thread at the pace they have recently kept.
        predicted_s = self.shop_waiting * self.shop_service_s / max(self.cfg.threads, 1)
        return settings.SHEDDING_PREDICT_WAIT and predicted_s > max_wait_s

    def handle(self, conn: Any) -> Any:
        self._retire_only_alone()  # max_requests, one worker at a time (core/recycling.py)
        started = time.monotonic()
        queued_at = getattr(conn, "shop_queued_at", None)
        waited = started - queued_at if queued_at is not None else None
        by = getattr(conn, "shop_refused_by", None)
        conn.shop_refused_by = None  # a kept-alive connection's next request is judged afresh
        limit_s = None
        if by is None and queued_at is not None:
            with self.shop_counts:
                limit_s = self._queue_limit_s(started)  # judged before this request leaves the queue
                self.shop_waiting -= 1
                self.shop_queue.pop(conn, None)
                if self.shop_waiting == 0:
                    self.shop_empty_at = started
                    self.shop_queue_busy.clear()
                # A standing queue: others still wait behind a request that waited this long.
                self.shop_standing_wait_s = waited if self.shop_waiting > 0 and waited is not None else 0.0
        _queue_wait.seconds, _queue_wait.refused_by, _queue_wait.limit_s = waited, by, limit_s
        try:
            return super().handle(conn)
        finally:
            # A thread's next request must not inherit this one's wait.
            _queue_wait.seconds, _queue_wait.refused_by, _queue_wait.limit_s = None, None, None
            if not self.alive and not self.shop_said_leaving:  # max_requests reached, or the master said stop
                self.shop_said_leaving = True
                self.log.info("Worker %s stops taking connections at %.6f", os.getpid(), time.time())
            if by is None:  # a refusal (at the door or after the reaper) held no request thread
                self._note_service(time.monotonic() - started)

    def _note_service(self, seconds: float) -> None:
        # An exponential moving average (1/8 per request): it follows the load within a few dozen requests and
        # one slow request does not make the door refuse everybody.
        with self.shop_counts:
            self.shop_service_s += (seconds - self.shop_service_s) / 8
            self.shop_served += 1


def _readable(sock: Any) -> bool:
    """Bytes (a request, or the client's goodbye) wait on this socket. poll(), not select(): any descriptor number."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def proxy_queue_wait_s(header: str, *, now: float) -> float | None:
    """`t=1733050000.123` (seconds; nginx's ${msec}) or milli/microseconds since the epoch -> seconds ago."""
    value = header.removeprefix("t=").strip()
    try:
        stamp = float(value)
    except ValueError:
        return None  # a malformed stamp is ignored, never a 500
    for scale in (1.0, 1e3, 1e6):  # seconds, milliseconds, microseconds: whichever lands within a day of now
        if abs(now - stamp / scale) < 86_400:
            return max(now - stamp / scale, 0.0)
    return None


def queue_wait_s(request: HttpRequest) -> float | None:
    """The longest wait any trusted clock measured: the proxy's stamp also counts the time before gunicorn."""
    waits = [measured_queue_wait_s()]
    if settings.SHEDDING_TRUST_REQUEST_START and (header := request.headers.get("X-Request-Start")):
        waits.append(proxy_queue_wait_s(header, now=time.time()))
    measured = [wait for wait in waits if wait is not None]
    return max(measured) if measured else None


def overloaded_response(request: HttpRequest, *, waited_ms: float) -> HttpResponse:
    response = refusal_response(
        request,
        status=503,
        code="overloaded",
        title="The shop is overloaded.",
        detail="The shop is busy right now; please try again in a moment.",
        retry_after=settings.SHEDDING_RETRY_AFTER_S,
        template="errors/503.html",
        extra={"queued_ms": round(waited_ms)},
    )
    # One line per refusal, the access log's (with its queued_ms): Django's request logger would add a second,
    # an error with a traceback-less "Service Unavailable", for each of thousands of refusals a minute.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


class LoadSheddingMiddleware:
    """Refuse a request that waited longer than SHEDDING_MAX_QUEUE_MS for a thread: 503 + Retry-After, at once."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.max_wait_s = settings.SHEDDING_MAX_QUEUE_MS / 1000
        self.exempt = tuple(settings.SHEDDING_EXEMPT_PATHS)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.max_wait_s > 0 and not request.path.startswith(self.exempt):
            waited = queue_wait_s(request)
            # The worker's limit for this request: shorter while its queue stands (CoDel, above).
            limit_s = min(self.max_wait_s, measured_queue_limit_s() or self.max_wait_s)
            # Overload: past the knee, serving a request that already waited this long only makes the next wait
            # longer; refusing it now keeps the admitted ones within budget.
            by = refused_by() or ("thread" if waited is not None and waited > limit_s else None)
            if by:
                record_shed()
                # The access log says which rule refused it: at the door, by the reaper, or when a thread took it.
                request.shop_shed_by = by  # type: ignore[attr-defined]
                return overloaded_response(request, waited_ms=(waited or 0.0) * 1000)
        return self.get_response(request)
