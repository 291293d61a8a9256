"""Refusals, built in one place: RFC 9457 problem+json for the API, the shop's page for a browser.

`wants_problem_json` is the one web-or-API decision; `refusal_response` makes it and builds either answer
(middleware, throttles, the lockout, the error views); `problem_body` is the one shape of every error body (DRF's
handler, core/exceptions.py, uses it too); `render_refusal` is the web page for an ApplicationError a view caught.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string

if TYPE_CHECKING:
    from core.errors import ApplicationError

PROBLEM_CONTENT_TYPE = "application/problem+json"

# One code per status: for an error whose cause is known only by its status (a middleware's bare 403, a route
# nobody matched, a refusal Django rendered itself), and for DRF's exceptions with one cause per status
# (core/exceptions.py), the throttles and the body limit, so a client never sees "forbidden" from one layer and
# "permission_denied" from another for the same refusal.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


def status_code_name(status: int) -> str:
    """The stable `code` for an error answer known only by its status."""
    if status >= 500:
        return "server_error"
    if status in STATUS_CODES:
        return STATUS_CODES[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "error"
    return phrase.lower().replace(" ", "_").replace("-", "_")


def problem_body(
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    retry_after: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one shape of every error body (the `Problem` component of the OpenAPI document, core/openapi.py)."""
    body: dict[str, Any] = {
        "type": f"https://hardened-shop.example/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }
    if retry_after is not None:
        # The same number as the Retry-After header, for clients that only read bodies.
        body["retry_after"] = retry_after
    if extra:
        body.update(extra)
    return body


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    retry_after: int | None = None,
    extra: dict[str, Any] | None = None,
) -> JsonResponse:
    body = problem_body(status=status, code=code, title=title, detail=detail, retry_after=retry_after, extra=extra)
    response = JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def wants_problem_json(request: HttpRequest) -> bool:
    """The API, and any request that asks for JSON (the order status poll), gets problem+json; a browser a page."""
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def bare_page(template_name: str, detail: str, *, status: int) -> HttpResponse:
    """An error page rendered without the request: no context processor may touch the failing database."""
    return HttpResponse(render_to_string(template_name, {"detail": detail, "status": status}), status=status)


def refusal_response(
    request: HttpRequest,
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    retry_after: int | None = None,
    template: str = "errors/400.html",
    context: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """A refusal as the caller reads it: problem+json for the API, else `template` (bare, or rendered with the
    request when the page needs `context`). Retry-After on both when the client may try again; `extra` adds
    members to the problem body."""
    if wants_problem_json(request):
        return problem_response(
            status=status, code=code, title=title, detail=detail, retry_after=retry_after, extra=extra
        )
    if context is None:
        response = bare_page(template, detail or title, status=status)
    else:
        response = render(request, template, context, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def render_refusal(
    request: HttpRequest, error: ApplicationError, *, back_url: str | None = None, back_label: str = "Go back"
) -> HttpResponse:
    """A refusal the customer can act on, in the shop's layout, with the error's HTTP status. Never a 500."""
    response = render(
        request,
        "errors/refusal.html",
        {"error": error, "back_url": back_url, "back_label": back_label},
        status=error.status,
    )
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    return response
