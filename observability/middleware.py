"""One access log line and the request metrics for every request.

Sits right after RequestIdMiddleware and ServerTimingMiddleware, so the request id is set and the query counter
(request.db_queries) sees every query the rest of the stack runs. Exceptions have already been turned into a
500 response by the inner layers when the response comes back here, so failures are counted and logged too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core import metrics
from core.shedding import measured_queue_wait_s
from observability.context import current_request, user_id_of
from observability.logs import access_logger, level_for_status

Handler = Callable[[HttpRequest], HttpResponse]


def route_of(request: HttpRequest) -> str:
    """The URL pattern that served the request: bounded cardinality, unlike the raw path with its ids."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return metrics.UNMATCHED_ROUTE
    return "/" + match.route


class AccessLogMiddleware:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        token = current_request.set(request)
        try:
            response = self.get_response(request)
            self._record(request, response.status_code, time.perf_counter() - started)
            return response
        finally:
            current_request.reset(token)

    def _record(self, request: HttpRequest, status: int, duration_s: float) -> None:
        route = route_of(request)
        metrics.record_request(route=route, method=request.method or "", status=status, duration_s=duration_s)
        queries = getattr(request, "db_queries", None)
        waited_s = measured_queue_wait_s()  # how long it waited for a thread (gunicorn's worker measured it)
        # Only a refusal names the rule that refused it (core/shedding.py); other lines carry no such field.
        shed = {"shed_by": request.shop_shed_by} if hasattr(request, "shop_shed_by") else {}
        access_logger().log(
            level_for_status(status),
            "request",
            method=request.method,
            route=route,
            path=request.path,
            status=status,
            duration_ms=round(duration_s * 1000, 2),
            queued_ms=round(waited_s * 1000, 1) if waited_s is not None else None,
            db_queries=queries.count if queries is not None else None,
            user_id=user_id_of(request),
            **shed,
        )
