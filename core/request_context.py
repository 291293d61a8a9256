"""The current request id, readable anywhere in the request (logs, Celery headers, Sentry tags)."""

from __future__ import annotations

import contextvars
import re
import uuid

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Also the pattern the OpenAPI document gives for the X-Request-ID response header (core/openapi.py).
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
_VALID_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(raw: str | None) -> str:
    """Echo a client's X-Request-ID when it is sane; log injection and huge headers get a fresh id instead."""
    # fullmatch, not match: `$` also matches before a trailing newline, which no header value may carry.
    if raw and _VALID_REQUEST_ID.fullmatch(raw):
        return raw
    return new_request_id()
