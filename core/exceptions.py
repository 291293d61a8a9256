"""The one DRF exception handler: every API error leaves as problem+json with a stable `code`."""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from core.database_errors import classify_database_error
from core.errors import ApplicationError
from core.problems import PROBLEM_CONTENT_TYPE, STATUS_CODES, problem_body

# A refusal with one cause per status takes that status's code (core/problems.STATUS_CODES), the same code a
# bare refusal of that status gets from ErrorAnswersMiddleware; 400 and 401 have two causes, told apart here.
_DRF_CODES: dict[type[drf_exceptions.APIException], str] = {
    drf_exceptions.ParseError: "malformed_request",
    drf_exceptions.NotAuthenticated: STATUS_CODES[401],
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.PermissionDenied: STATUS_CODES[403],
    drf_exceptions.NotFound: STATUS_CODES[404],
    drf_exceptions.MethodNotAllowed: STATUS_CODES[405],
    drf_exceptions.NotAcceptable: STATUS_CODES[406],
    drf_exceptions.UnsupportedMediaType: STATUS_CODES[415],
    drf_exceptions.Throttled: STATUS_CODES[429],
    drf_exceptions.ValidationError: "invalid",
}


def _problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    retry_after: int | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = problem_body(status=status, code=code, title=title, detail=detail, retry_after=retry_after, extra=extra)
    response = Response(body, status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _flatten_errors(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for field, messages in detail.items():
            if isinstance(messages, dict):
                for sub_field, sub_messages in _flatten_errors(messages).items():
                    flat[f"{field}.{sub_field}"] = sub_messages
            elif isinstance(messages, list) and messages and isinstance(messages[0], dict):
                for index, item in enumerate(messages):
                    for sub_field, sub_messages in _flatten_errors(item).items():
                        flat[f"{field}[{index}].{sub_field}"] = sub_messages
            elif isinstance(messages, list):
                flat[field] = [str(message) for message in messages]
            else:
                flat[field] = [str(messages)]
        return flat
    if isinstance(detail, list):
        return {"non_field_errors": [str(message) for message in detail]}
    return {"non_field_errors": [str(detail)]}


def _detail_text(detail: Any) -> str:
    """simplejwt's InvalidToken carries {"detail", "code", "messages"}; the client gets the sentence."""
    if isinstance(detail, dict):
        return str(detail.get("detail") or next(iter(detail.values()), ""))
    if isinstance(detail, list):
        return " ".join(str(item) for item in detail)
    return str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return _problem(exc.status, exc.code, exc.title, exc.detail, retry_after=exc.retry_after, extra=exc.extra)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    if isinstance(exc, OperationalError | InterfaceError | DatabaseError):
        unavailable = classify_database_error(exc)
        if unavailable is None:
            return None  # a genuine bug: let it surface (and reach Sentry)
        return _problem(
            unavailable.status,
            unavailable.code,
            unavailable.title,
            unavailable.detail,
            retry_after=unavailable.retry_after,
        )
    if isinstance(exc, drf_exceptions.APIException):
        code = _DRF_CODES.get(type(exc), exc.default_code)
        status = exc.status_code
        extra: dict[str, Any] = {}
        headers: dict[str, str] = {}
        if isinstance(exc, drf_exceptions.ValidationError):
            extra["errors"] = _flatten_errors(exc.detail)
            detail = "The request has invalid fields; see errors."
            title = "Invalid request."
        else:
            detail = _detail_text(exc.detail)
            # A default_detail with a placeholder ('Unsupported media type "{media_type}"') is no title.
            title = str(exc.default_detail)
            if "{" in title:
                title = f"{HTTPStatus(status).phrase}."
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        retry_after: int | None = None
        if isinstance(exc, drf_exceptions.Throttled):
            # Retry-After is whole seconds, rounded up: a client that waits that long is inside the next window.
            retry_after = max(1, math.ceil(getattr(exc, "wait", None) or 1))
        return _problem(status, code, title, detail, retry_after=retry_after, extra=extra, headers=headers)
    return None
