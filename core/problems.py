"""RFC 9457 problem+json responses, built in one place for the API handler and the middleware."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"


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
