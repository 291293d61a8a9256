"""Liveness and readiness. /healthz touches nothing; /readyz names each dependency that failed.

    /healthz          the process answers (liveness)
    /readyz/serving   the instance can serve: the database through PgBouncer answers (an orchestrator's readiness)
    /readyz           the deep check: database, cache and broker (the API contract; monitoring and alerts)

Why two: a Redis or broker outage is the same for every instance. If readiness followed Redis, an orchestrator
would pull every web pod out of the load balancer at once and turn a degraded shop (cache misses, fail-open
writes, sessions in PostgreSQL, logins refusing with 503) into no shop at all. So the orchestrator's probe asks
only what one instance can fix by being restarted or replaced, and the cache and broker are watched by the
deep check, the `shop_dependency_up` gauge and its alerts (deploy/observability/alerts.yml).

Readiness runs its checks in parallel, each with its own short timeout, under one overall deadline
(READYZ_DEADLINE_S): a hung dependency makes the probe answer 503 "database: timeout" in about a second,
instead of hanging the probe until the orchestrator gives up and kills a healthy process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis
from celery import current_app
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.problems import problem_response
from core.redis_pool import redis_client_for

READYZ_DEADLINE_S = 2.0
CHECK_TIMEOUT_S = 1


@login_not_required  # Deny by default is on: probes are anonymous by design.
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    # Through PgBouncer, exactly like a request. The SET LOCAL bounds the query even if the role's
    # statement_timeout were missing; connect_timeout bounds the connect.
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SET LOCAL statement_timeout = %s", [f"{int(CHECK_TIMEOUT_S * 1000)}ms"])
            cursor.execute("SELECT 1")
            cursor.execute("COMMIT")
    finally:
        connection.close()  # this thread's connection; never left for a pool that does not exist


def _check_cache() -> None:
    # The cache backend swallows outages (ResilientRedisCache), so readiness pings Redis itself.
    location = str(settings.CACHES["default"]["LOCATION"])
    if not redis_client_for(location, min(settings.REDIS_TIMEOUT_S, CHECK_TIMEOUT_S)).ping():
        raise redis.ConnectionError("no PONG")


def _check_broker() -> None:
    # The project's Celery app (config/celery.py), as the current app: core never imports config.
    with current_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_S)


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "cache": _check_cache,
    "broker": _check_broker,
}


SERVING_CHECKS = ("database",)


def run_checks(deadline_s: float = READYZ_DEADLINE_S, *, only: tuple[str, ...] | None = None) -> dict[str, str]:
    """Run every check (or those named in `only`) in its own thread; one still running at the deadline is a timeout."""
    checks = {name: check for name, check in CHECKS.items() if only is None or name in only}
    results: dict[str, str] = {}

    def run(name: str, check: Callable[[], None]) -> None:
        try:
            check()
            results[name] = "ok"
        except Exception as error:
            results[name] = f"failed: {type(error).__name__}"

    threads = {
        name: threading.Thread(target=run, args=(name, check), name=f"readyz-{name}", daemon=True)
        for name, check in checks.items()
    }
    for thread in threads.values():
        thread.start()
    ends_at = time.monotonic() + deadline_s
    for thread in threads.values():
        thread.join(max(0.0, ends_at - time.monotonic()))
    return {name: results.get(name, "failed: timeout") for name in checks}


def _readiness_response(results: dict[str, str]) -> JsonResponse:
    # A demo stack says so wherever an operator looks (DEMO_MODE: the payment simulator and the demo data).
    demo_mode = settings.DEMO_MODE
    failed = [name for name, outcome in results.items() if outcome != "ok"]
    if not failed:
        return JsonResponse({"status": "ready", "checks": results, "demo_mode": demo_mode})
    return problem_response(
        status=503,
        code="service_unavailable",
        title="Not ready.",
        detail=f"Failing: {', '.join(failed)}.",
        retry_after=5,
        extra={"checks": results, "demo_mode": demo_mode},
    )


@login_not_required  # Probes are anonymous by design.
@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """The deep check: 200 when database, cache and broker answer, else 503 naming what failed."""
    return _readiness_response(run_checks())


@login_not_required  # Probes are anonymous by design.
@never_cache
@require_GET
def readyz_serving(request: HttpRequest) -> JsonResponse:
    """The orchestrator's readiness: 200 when this instance can serve, i.e. its database path answers."""
    return _readiness_response(run_checks(only=SERVING_CHECKS))
