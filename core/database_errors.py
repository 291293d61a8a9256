"""Infrastructure failures of the database (down, query cancelled, lock timeout) become 503/409, not 500.

One classification, used by the API's exception handler (core/exceptions.py) and by the HTML error path
(ServiceUnavailableMiddleware in core/middleware.py), for any code path that does not say "busy" itself.
"""

from __future__ import annotations

import psycopg.errors
from django.db import DatabaseError, InterfaceError, OperationalError

from core.errors import ApplicationError, Busy, ServiceUnavailable
from core.locking import busy, is_lock_contention


def classify_database_error(exc: BaseException) -> ApplicationError | None:
    """Map a database exception to the refusal the client should see, or None when it is a real bug."""
    cause = exc.__cause__ or exc
    if is_lock_contention(exc):
        # Lock contention that escaped core.locking's wrapper: another request holds the rows; retry.
        return busy()
    if isinstance(cause, psycopg.errors.QueryCanceled):
        # Slow query: statement_timeout cancelled it; the worker is free again and the client retries later.
        return ServiceUnavailable("The request took too long and was cancelled. Try again shortly.", retry_after=5)
    if isinstance(cause, psycopg.errors.IdleInTransactionSessionTimeout | psycopg.errors.AdminShutdown):
        return ServiceUnavailable("The database connection was reset. Try again shortly.", retry_after=2)
    if isinstance(exc, OperationalError | InterfaceError) or isinstance(cause, psycopg.OperationalError):
        # Database or PgBouncer down: answer within the connect timeout, recover when it is back.
        return ServiceUnavailable("The database is unavailable. Try again shortly.", retry_after=5)
    if isinstance(exc, DatabaseError) and isinstance(cause, psycopg.errors.SerializationFailure):
        return Busy("A concurrent update got in the way. Try again.", retry_after=1)
    return None
