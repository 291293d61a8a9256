"""The shop's Prometheus metrics, and one small `record_*` function per event the code paths report.

Several gunicorn workers (and Celery children) each count in their own process. With
PROMETHEUS_MULTIPROC_DIR set, prometheus_client writes every process's values to files in that directory and
/metrics adds them up, so a scrape sees the whole server, not whichever worker answered. The gunicorn
`child_exit` hook marks dead workers (config/gunicorn.conf.py); the directory is emptied before start.

Labels are bounded on purpose (cardinality): routes are URL patterns (`/api/v1/orders/<int:order_id>/`), not
raw paths; methods outside the usual set count as "other"; reasons are fixed words.
"""

from __future__ import annotations

import os

from django.db import transaction
from prometheus_client import Counter, Histogram, disable_created_metrics

# One series per counter, as in multiprocess mode (which has no *_created samples).
disable_created_metrics()

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"

HTTP_REQUESTS = Counter(
    "shop_http_requests",
    "HTTP requests answered, by route pattern, method and status code.",
    ["route", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "shop_http_request_duration_seconds",
    "Time from the first middleware to the response, by route pattern and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
ORDERS_PLACED = Counter("shop_orders_placed", "Orders created (not replays).")
IDEMPOTENT_REPLAYS = Counter("shop_idempotent_replays", "Requests answered by replaying a stored response.")
IDEMPOTENCY_KEY_CONFLICTS = Counter(
    "shop_idempotency_key_conflicts",
    "Idempotency-Key refusals: reused (different payload, 422) or in_flight (409).",
    ["reason"],
)
STOCK_CONFLICTS = Counter(
    "shop_stock_conflicts",
    "Orders refused over stock: insufficient_stock, or busy (a stock row lock timed out).",
    ["reason"],
)
REQUESTS_SHED = Counter(
    "shop_requests_shed", "Requests refused 503 overloaded: they waited too long for a thread (core/shedding.py)."
)
THROTTLED_REQUESTS = Counter("shop_throttled_requests", "Requests answered 429, by throttle scope.", ["scope"])
PAYMENT_ATTEMPTS = Counter(
    "shop_payment_attempts", "Calls to the payment provider, by kind (charge, refund).", ["kind"]
)
PAYMENT_FAILURES = Counter(
    "shop_payment_failures",
    "Payment calls without success: declined (final) or unavailable (timeout, 5xx, breaker open; retried).",
    ["kind", "reason"],
)

MAIL_SENT = Counter("shop_mail_sent", "Messages the SMTP server accepted, by X-Shop-Event.", ["event"])
MAIL_FAILED = Counter(
    "shop_mail_failed",
    "Delivery attempts without success: unavailable (deferred, retried), refused (5xx for the message, final) "
    "or gave_up (MAIL_MAX_ATTEMPTS used), by X-Shop-Event.",
    ["event", "reason"],
)
CELERY_TASKS = Counter(
    "shop_celery_tasks", "Celery tasks run in this worker, by task name and final state.", ["task", "state"]
)
CELERY_TASK_CPU = Counter(
    "shop_celery_task_cpu_seconds",
    "CPU time spent running tasks (the task's own thread, not Celery's bookkeeping around it), by task name.",
    ["task"],
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def bounded_method(method: str | None) -> str:
    return method if method in KNOWN_METHODS else "other"


def record_request(*, route: str, method: str, status: int, duration_s: float) -> None:
    method = bounded_method(method)
    HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
    HTTP_REQUEST_DURATION.labels(route=route, method=method).observe(duration_s)


def record_order_placed() -> None:
    ORDERS_PLACED.inc()


def count_order_placed_on_commit(sender: type, instance: object, created: bool, **kwargs: object) -> None:
    """post_save receiver for Order: counted once the order is committed, never for a rolled-back attempt."""
    if created:
        transaction.on_commit(record_order_placed)


def record_idempotent_replay() -> None:
    IDEMPOTENT_REPLAYS.inc()


def record_idempotency_conflict(reason: str) -> None:
    """reason: "reused" or "in_flight"."""
    IDEMPOTENCY_KEY_CONFLICTS.labels(reason=reason).inc()


def record_stock_conflict(reason: str) -> None:
    """reason: "insufficient_stock" or "busy"."""
    STOCK_CONFLICTS.labels(reason=reason).inc()


def record_shed() -> None:
    REQUESTS_SHED.inc()


def record_throttled(scope: str) -> None:
    THROTTLED_REQUESTS.labels(scope=scope).inc()


def record_payment_attempt(kind: str = "charge") -> None:
    PAYMENT_ATTEMPTS.labels(kind=kind).inc()


def record_payment_failure(reason: str, kind: str = "charge") -> None:
    """reason: "declined", "unavailable" or "breaker_open"."""
    PAYMENT_FAILURES.labels(kind=kind, reason=reason).inc()


def record_mail_sent(*, event: str) -> None:
    MAIL_SENT.labels(event=event).inc()


def record_mail_failed(*, event: str, reason: str) -> None:
    """reason: "unavailable", "refused" or "gave_up"."""
    MAIL_FAILED.labels(event=event, reason=reason).inc()


def record_task(*, task: str, state: str, cpu_s: float) -> None:
    """One task run: its final state (SUCCESS, FAILURE, RETRY...) and the CPU its thread spent in it."""
    CELERY_TASKS.labels(task=task, state=state).inc()
    CELERY_TASK_CPU.labels(task=task).inc(max(cpu_s, 0.0))
