"""Helpers for tests that race for real: threads lined up on a barrier, each with its own database connection.

Use them only in `@pytest.mark.django_db(transaction=True)` tests: a thread's writes must really commit to be
seen by the others, exactly as two web workers would see each other's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import psycopg
from django.db import connection, connections
from django.db.models import Model
from django.db.models.constraints import BaseConstraint

T = TypeVar("T")

BARRIER_TIMEOUT_S = 30


@dataclass
class Outcome(Generic[T]):
    """What one thread got: a value, or the exception it raised."""

    value: T | None = None
    error: BaseException | None = None

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


def run_concurrently(worker: Callable[[int], T], count: int) -> list[Outcome[T]]:
    """Run `worker(0..count-1)` in `count` threads released together by a barrier; return every outcome.

    Each thread closes its own database connections at the end, so no connection leaks into the next test.
    """
    start = threading.Barrier(count)
    outcomes: list[Outcome[T]] = [Outcome() for _ in range(count)]

    def run(index: int) -> None:
        try:
            start.wait(timeout=BARRIER_TIMEOUT_S)
            outcomes[index] = Outcome(value=worker(index))
        except BaseException as error:  # the test decides which errors are acceptable
            outcomes[index] = Outcome(error=error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,), name=f"racer-{index}") for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    return outcomes


def raw_connection() -> psycopg.Connection[tuple[object, ...]]:
    """A connection to the test database that Django does not manage (through PgBouncer, like the app)."""
    params = connection.settings_dict
    return psycopg.connect(
        host=params["HOST"],
        port=params["PORT"],
        user=params["USER"],
        dbname=params["NAME"],
        autocommit=False,
    )


@contextmanager
def constraint_switched_off(model: type[Model], name: str, *, clean_up: Callable[[], object]) -> Iterator[None]:
    """Drop one database constraint for the body of a twin test, then put it back.

    `clean_up` removes the rows the unprotected code wrote (they would violate the constraint), before the
    constraint is added again. The test database is private to this test run, so nobody else sees the gap.
    """
    constraint = next(c for c in model._meta.constraints if c.name == name)
    assert isinstance(constraint, BaseConstraint)
    with connection.schema_editor() as editor:
        editor.remove_constraint(model, constraint)
    try:
        yield
    finally:
        clean_up()
        with connection.schema_editor() as editor:
            editor.add_constraint(model, constraint)
