"""Liveness and readiness. /healthz touches nothing; /readyz names each dependency that failed."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@login_not_required  # Deny by default is on: probes are anonymous by design.
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    cache.set("readyz", "1", timeout=5)
    if cache.get("readyz") != "1":
        raise RuntimeError("cache did not return what was written")


def _check_broker() -> None:
    from config.celery import app

    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, timeout=2)


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "cache": _check_cache,
    "broker": _check_broker,
}


@login_not_required
@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as error:
            results[name] = f"failed: {type(error).__name__}"
    failed = [name for name, outcome in results.items() if outcome != "ok"]
    if not failed:
        return JsonResponse({"status": "ready", "checks": results})
    response = JsonResponse(
        {
            "type": "https://hardened-shop.example/problems/service-unavailable",
            "title": "Not ready.",
            "status": 503,
            "detail": f"Failing: {', '.join(failed)}.",
            "code": "service_unavailable",
            "checks": results,
        },
        status=503,
        content_type="application/problem+json",
    )
    response["Retry-After"] = "5"
    return response
