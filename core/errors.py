"""One application error type. Services raise it; one API handler and one HTML path turn it into HTTP."""

from __future__ import annotations

from typing import Any

from django.http import Http404


class ApplicationError(Exception):
    """A refusal the client can understand: a stable `code`, an HTTP `status` and a human `title`."""

    code = "application_error"
    status = 400
    title = "The request could not be completed."

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        title: str | None = None,
        retry_after: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.retry_after = retry_after
        self.extra = extra or {}
        super().__init__(self.detail)


class NotFound(ApplicationError, Http404):
    """Also an Http404, so an HTML view needs no translation: Django renders the 404 page, DRF the problem."""

    code = "not_found"
    status = 404
    title = "Not found."


class Conflict(ApplicationError):
    code = "conflict"
    status = 409
    title = "The resource is not in a state that allows this."


class Busy(ApplicationError):
    """Lock contention: someone else holds the row; try again shortly. Never a 500."""

    code = "busy"
    status = 409
    title = "The resource is busy, try again shortly."

    def __init__(self, detail: str | None = None, *, retry_after: int = 1, **kwargs: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **kwargs)


class InsufficientStock(ApplicationError):
    code = "insufficient_stock"
    status = 409
    title = "Not enough stock."


class PreconditionFailed(ApplicationError):
    code = "precondition_failed"
    status = 412
    title = "The resource changed since you last read it."


class PreconditionRequired(ApplicationError):
    code = "precondition_required"
    status = 428
    title = "This request must be conditional: send If-Match with the ETag you read."


class ServiceUnavailable(ApplicationError):
    code = "service_unavailable"
    status = 503
    title = "The service is temporarily unavailable."

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **kwargs: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **kwargs)
