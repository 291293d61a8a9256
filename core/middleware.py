"""Cross-cutting middleware: request ids, Server-Timing, body size caps, and 503 instead of tracebacks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from core.infrastructure import classify_database_error
from core.problems import problem_response
from core.request_context import accept_request_id, current_request_id

logger = logging.getLogger(__name__)

Handler = Callable[[HttpRequest], HttpResponse]


def wants_problem_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def bare_page(template_name: str, detail: str, *, status: int) -> HttpResponse:
    """An error page rendered without the request: no context processor may touch the failing database."""
    return HttpResponse(render_to_string(template_name, {"detail": detail, "status": status}), status=status)


class RequestIdMiddleware:
    """Every response carries X-Request-ID, echoed from the client or generated, so one id finds the story."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = accept_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id  # type: ignore[attr-defined]
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class _QueryCounter:
    def __init__(self) -> None:
        self.count = 0
        self.duration_s = 0.0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.duration_s += time.perf_counter() - started


class ServerTimingMiddleware:
    """N+1 made visible: `Server-Timing: db;dur=3.2;desc="4 queries"` on every response, when enabled."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        counter = _QueryCounter()
        request.db_queries = counter  # type: ignore[attr-defined]
        with connections["default"].execute_wrapper(counter):
            response = self.get_response(request)
        if settings.SERVER_TIMING_ENABLED:
            response["Server-Timing"] = f'db;dur={counter.duration_s * 1000:.1f};desc="{counter.count} queries"'
        return response


class BodySizeLimitMiddleware:
    """Resource exhaustion: a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE is refused with 413 unread.

    Django only checks the limit when `request.body` is read; DRF streams the body into its parser, so the
    header is checked here, before any view runs.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if limit is not None and declared > limit:
            detail = f"The request body is {declared} bytes; the limit is {limit} bytes."
            if wants_problem_json(request):
                return problem_response(
                    status=413, code="request_too_large", title="Request body too large.", detail=detail
                )
            return bare_page("errors/413.html", detail, status=413)
        return self.get_response(request)


class ServiceUnavailableMiddleware:
    """Infrastructure failure in an HTML or API view: a polite 503 with Retry-After, never a traceback."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DatabaseError):
            return None
        refusal = classify_database_error(exception)
        if refusal is None:
            return None
        logger.warning("database unavailable: %s", exception.__class__.__name__, exc_info=exception)
        if wants_problem_json(request):
            return problem_response(
                status=refusal.status,
                code=refusal.code,
                title=refusal.title,
                detail=refusal.detail,
                retry_after=refusal.retry_after,
            )
        response = bare_page("errors/503.html", refusal.detail, status=refusal.status)
        if refusal.retry_after is not None:
            response["Retry-After"] = str(refusal.retry_after)
        return response
