"""Who and which request we are serving right now, readable from logs, Sentry and Celery without a query.

The request id itself lives in core/request_context.py (RequestIdMiddleware sets it). This module adds the
user: inside a request it is read from the request object; inside a Celery task it was carried in the task's
headers by the request that enqueued it (observability/task_context.py).
"""

from __future__ import annotations

import contextvars

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject, empty

current_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("current_request", default=None)
task_user_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_user_id", default=None)


def user_id_of(request: HttpRequest) -> str | None:
    """The authenticated user's id, or None, without ever running a query.

    Query budgets: `request.user` is a lazy object that loads the session user from the database when first
    touched. A log line must not add that query, so a user nobody has looked at yet counts as unknown. DRF
    writes the user it authenticated (JWT) straight onto the Django request, so API requests are covered.
    """
    user = request.__dict__.get("user")
    if user is None:
        return None
    if isinstance(user, SimpleLazyObject):
        wrapped = user._wrapped  # type: ignore[attr-defined]
        if wrapped is empty:
            return None
        user = wrapped
    if not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


def current_user_id() -> str | None:
    request = current_request.get()
    if request is not None:
        return user_id_of(request)
    return task_user_id.get()
