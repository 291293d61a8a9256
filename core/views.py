"""The HTML error path: helpful pages for the web, problem+json for API paths, never a traceback."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from core.problems import refusal_response, status_code_name

_PAGES = {
    400: ("errors/400.html", "Bad request."),
    403: ("errors/403.html", "You do not have access to this page."),
    404: ("errors/404.html", "Not found."),
    500: ("errors/500.html", "Something went wrong on our side."),
}


def _error(request: HttpRequest, status: int) -> HttpResponse:
    template, title = _PAGES[status]
    return refusal_response(request, status=status, code=status_code_name(status), title=title, template=template)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    return _error(request, 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """settings.CSRF_FAILURE_VIEW: a form older than the session it was rendered for (or forged)."""
    detail = "This form has expired. Go back, reload the page and send it again."
    return refusal_response(
        request, status=403, code="csrf_failed", title="Forbidden.", detail=detail, template="errors/403.html"
    )
