"""Cross-cutting middleware: request ids, Server-Timing, body size caps, refusal of unstorable input,
problem+json for every API error, and 503 instead of tracebacks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse

from core.database_errors import classify_database_error
from core.problems import (
    PROBLEM_CONTENT_TYPE,
    STATUS_CODES,
    bare_page,
    problem_response,
    refusal_response,
    status_code_name,
    wants_problem_json,
)
from core.request_context import accept_request_id, current_request_id

logger = structlog.get_logger(__name__)

Handler = Callable[[HttpRequest], HttpResponse]


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
            return refusal_response(
                request,
                status=413,
                code=STATUS_CODES[413],
                title="Request body too large.",
                detail=detail,
                template="errors/413.html",
            )
        return self.get_response(request)


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _holds_nul(values: Iterable[str]) -> bool:
    return any("\x00" in value for value in values)


def _query_and_form_texts(request: HttpRequest) -> Iterable[str]:
    yield request.path
    for key, values in request.GET.lists():
        yield key
        yield from values
    # Web forms only: an API body is JSON, checked by its parser (core/parsers.py); reading a multipart body
    # here would leave DRF nothing to read.
    if request.method == "POST" and not request.path.startswith("/api/") and request.content_type in _FORM_TYPES:
        for key, values in request.POST.lists():
            yield key
            yield from values


class UnstorableInputMiddleware:
    """Bad input: the one boundary where text PostgreSQL cannot store is refused with 400, for every page
    and every endpoint, before a view or a form sends it to the database.

    A NUL byte in the web search, a query parameter, a form field or a header (an Idempotency-Key, say) made
    psycopg raise inside the view: a 500, and a Sentry event, per request. Here it is a 400 (the shop's
    page, or problem+json for the API). Too many form fields (DATA_UPLOAD_MAX_NUMBER_FIELDS) get the same
    answer instead of escaping as SuspiciousOperation from the first view that reads them.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            refused = _holds_nul(_query_and_form_texts(request)) or _holds_nul(
                str(value) for name, value in request.META.items() if name.startswith("HTTP_")
            )
        except SuspiciousOperation as error:
            return bad_request_response(request, code="malformed_request", detail=f"The request was refused: {error}")
        if refused:
            detail = "The request contains a NUL character, which is never valid here."
            return bad_request_response(request, code="invalid_characters", detail=detail)
        return self.get_response(request)


def bad_request_response(request: HttpRequest, *, code: str, detail: str) -> HttpResponse:
    return refusal_response(request, status=400, code=code, title="Bad request.", detail=detail)


class ErrorAnswersMiddleware:
    """Last resort: every error answer is the shop's own, whoever produced it.

    The API (and any request that asks for JSON, like the order status poll) always gets problem+json.
    DRF's handler (core/exceptions.py) covers what a view raises; what it cannot see comes out of Django: an
    unhandled exception (Django logs it and sends got_request_exception, so Sentry records it, then renders a
    500 - under DEBUG=true, as `make run` has it, the HTML debug page), a URL that matches no route (the DEBUG
    404 page), a refusal from middleware. Sitting outside all of them, this turns any error answer that is not
    problem+json into one with the same status, after the logging and Sentry have happened.

    HTML gets the shop's error page where Django answers with an empty body (the 405 of @require_POST and
    friends), so a stranger never sees a blank page.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400:
            return response
        if wants_problem_json(request):
            if response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE):
                return response
            return _with_kept_headers(problem_for_status(response.status_code), response)
        if not getattr(response, "streaming", False) and not response.content.strip() and request.method != "HEAD":
            return _with_kept_headers(error_page_for_status(request, response.status_code), response)
        return response


# A rewritten error keeps every header but its own body's (Retry-After, Allow, WWW-Authenticate, the CSP and
# security headers the inner middleware set...), and its cookies.
_BODY_HEADERS = frozenset({"content-type", "content-length"})


def _with_kept_headers(rewritten: HttpResponse, original: HttpResponse) -> HttpResponse:
    for name, value in original.items():
        if name.lower() not in _BODY_HEADERS:
            rewritten[name] = value
    rewritten.cookies = original.cookies
    return rewritten


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_for_status(status: int) -> HttpResponse:
    phrase = _phrase(status)
    code = status_code_name(status)
    title = "Something went wrong on our side." if status >= 500 else f"{phrase}."
    return problem_response(status=status, code=code, title=title)


_PAGES = {403: "errors/403.html", 404: "errors/404.html", 413: "errors/413.html", 429: "errors/429.html"}


def error_page_for_status(request: HttpRequest, status: int) -> HttpResponse:
    detail = f"This page does not take a {request.method} request." if status == 405 else f"{_phrase(status)}."
    if status >= 500:
        return bare_page("errors/500.html", "Something went wrong on our side.", status=status)
    return bare_page(_PAGES.get(status, "errors/400.html"), detail, status=status)


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
        logger.warning("database unavailable", error=exception.__class__.__name__, exc_info=exception)
        return refusal_response(
            request,
            status=refusal.status,
            code=refusal.code,
            title=refusal.title,
            detail=refusal.detail,
            retry_after=refusal.retry_after,
            template="errors/503.html",
        )
