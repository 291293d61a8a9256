"""Row locks, taken one way everywhere: in primary-key order, with a short lock_timeout, and a timeout is busy.

Modelled on pretix's base/services/locking.py (sorted lock keys, a bounded wait, one "lock timeout" error), but
with PostgreSQL row locks instead of advisory locks: the rows a use case writes are the rows it locks.

- `locked_transaction()` opens a use case's durable transaction with `SET LOCAL lock_timeout` and turns a lock
  timeout (or a deadlock PostgreSQL broke) into `Busy`: 409 with Retry-After, never a 500.
- `lock_in_order(queryset)` locks the rows of one table in primary-key order, so two transactions that lock the
  same rows can never wait on each other in a cycle.
- `is_lock_contention(error)` is the one test for "busy", used by these helpers and by the last-resort
  classification of database errors (core/database_errors.py) for any code path that forgets them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg.errors
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Model, QuerySet

from core.errors import Busy
from core.metrics import record_stock_conflict

ModelT = TypeVar("ModelT", bound=Model)

BUSY_DETAIL = "Another request is updating the same items. Try again in a moment."


def is_lock_contention(error: BaseException) -> bool:
    """True when the database gave up waiting for a row lock (lock_timeout) or broke a deadlock."""
    cause = error.__cause__ or error
    return isinstance(cause, psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected)


def busy() -> Busy:
    """The refusal for lock contention: the client may simply retry."""
    return Busy(BUSY_DETAIL, retry_after=1)


def set_lock_timeout() -> None:
    """Wait at most ORDER_LOCK_TIMEOUT_MS for any row lock for the rest of the current transaction."""
    assert connection.in_atomic_block, "SET LOCAL outside a transaction would be a no-op"
    # Lock pile-up: a request waits a bounded time for a row lock, then answers 409 busy (not 500).
    # SET LOCAL (via set_config(..., true)) dies with the transaction, so it is safe through PgBouncer.
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{settings.ORDER_LOCK_TIMEOUT_MS}ms"])


@contextmanager
def busy_on_lock_contention() -> Iterator[None]:
    """Turn a lock timeout (or a deadlock PostgreSQL broke) into `Busy`: 409 with Retry-After, never a 500.

    Wrap the whole `transaction.atomic` block, so the transaction is already rolled back when Busy leaves.
    """
    try:
        yield
    except OperationalError as error:
        if is_lock_contention(error):
            record_stock_conflict("busy")
            raise busy() from error
        raise


@contextmanager
def locked_transaction() -> Iterator[None]:
    """The durable transaction of a use case that takes row locks: bounded lock waits, contention is busy."""
    with busy_on_lock_contention(), transaction.atomic(durable=True):
        set_lock_timeout()
        yield


def lock_in_order(queryset: QuerySet[ModelT]) -> QuerySet[ModelT]:
    """`queryset`'s rows, locked (FOR UPDATE of its own table only) in primary-key order.

    Deadlock: two transactions locking the same rows in different orders (opposite carts) wait on each other
    forever; in one global order, one of them simply waits its turn.
    """
    return queryset.select_for_update(of=("self",)).order_by("pk")
