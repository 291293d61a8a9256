"""Recognise infrastructure failures (database down, query cancelled, lock timeout) as 503/409, not 500."""

from __future__ import annotations

import psycopg.errors
from django.db import DatabaseError, InterfaceError, OperationalError

from core.errors import ApplicationError, Busy, ServiceUnavailable


def classify_database_error(exc: BaseException) -> ApplicationError | None:
    """Map a database exception to the refusal the client should see, or None when it is a real bug."""
    cause = exc.__cause__ or exc
    if isinstance(cause, psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected):
        # Lock contention: another request holds the rows; the client may simply retry.
        return Busy("Another request is updating the same items. Try again in a moment.", retry_after=1)
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
