"""The load audit's mail check (loadtests/audit.py, check_one_confirmation_per_accepted_order) can fail.

Placement writes its confirmation, so every accepted order needs exactly one sent row and exactly one message in
the run's sink; an accepted order without its row (a placement path that forgot it) fails the check.
"""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction

from loadtests import audit
from mail import dispatch
from mail.messages import build_email
from mail.models import OutboxMessage
from mail.services import order_mail_enqueue, outbox_deliver
from orders.models import Order
from tests.factories import ProductFactory, UserFactory
from tests.mail.conftest import SmtpSink
from tests.orders.support import place

pytestmark = pytest.mark.django_db(transaction=True)  # the audit reads through its own connection


@pytest.fixture(autouse=True)
def no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "mail_delivery_enqueue", lambda outbox_id: None)


@pytest.fixture
def conn() -> Iterator[psycopg.Connection[Any]]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as audit_connection:
        yield audit_connection


def _accepted_orders(count: int) -> tuple[list[Order], list[dict[str, Any]]]:
    alice = UserFactory.create(username="alice")
    orders = [
        place(alice, (ProductFactory.create(price=Decimal("4.00")), 1), key=str(uuid.uuid4())) for _ in range(count)
    ]
    ledger = [
        {"kind": "order_accepted", "username": "alice", "key": o.idempotency_key, "order_id": o.pk} for o in orders
    ]
    return orders, ledger


def _confirm(order: Order) -> OutboxMessage:
    """The confirmation the placement wrote (asking again returns that row: one event, one row)."""
    with transaction.atomic():
        result = order_mail_enqueue(order=order, event="order_placed")
    assert result is not None and not result.created
    return result.message


def _check(conn: psycopg.Connection[Any], ledger: list[dict[str, Any]], sink: SmtpSink | None) -> dict[str, Any]:
    results = audit.check_one_confirmation_per_accepted_order(
        conn, ledger, sink.directory if sink else None, timeout_s=0
    )
    return results["one_confirmation_per_accepted_order"]


def test_the_check_is_never_skipped_accepted_orders_without_any_confirmation_fail(
    conn: psycopg.Connection[Any],
) -> None:
    orders, ledger = _accepted_orders(2)
    OutboxMessage.objects.filter(order__in=orders).delete()  # as if placement promised no mail at all
    result = _check(conn, ledger, None)
    assert not result["ok"]
    assert "2 accepted orders without a confirmation row" in result["detail"]


def test_one_sent_confirmation_per_order_passes_and_a_recognised_resend_is_fine(
    conn: psycopg.Connection[Any], smtp_sink: SmtpSink
) -> None:
    orders, ledger = _accepted_orders(3)
    rows = [_confirm(order) for order in orders]
    for row in rows:
        assert outbox_deliver(outbox_id=row.pk) == "sent"
    with smtplib.SMTP("127.0.0.1", smtp_sink.port) as smtp:  # a resend after a crash: the same Message-ID
        smtp.send_message(build_email(rows[0]).message())

    result = _check(conn, ledger, smtp_sink)

    assert result["ok"], result["detail"]
    assert "1 resends recognised" in result["detail"]


def test_an_accepted_order_without_its_confirmation_fails(conn: psycopg.Connection[Any], smtp_sink: SmtpSink) -> None:
    orders, ledger = _accepted_orders(2)
    assert outbox_deliver(outbox_id=_confirm(orders[0]).pk) == "sent"
    OutboxMessage.objects.filter(order=orders[1]).delete()  # a placement path that forgot its confirmation
    result = _check(conn, ledger, smtp_sink)
    assert not result["ok"]
    assert f"without a confirmation row: {orders[1].pk}" in result["detail"]


def test_an_unsent_confirmation_fails(conn: psycopg.Connection[Any], smtp_sink: SmtpSink) -> None:
    orders, ledger = _accepted_orders(1)
    _confirm(orders[0])
    result = _check(conn, ledger, smtp_sink)
    assert not result["ok"] and "not sent" in result["detail"]


def test_two_distinct_messages_for_one_order_in_the_sink_fail(
    conn: psycopg.Connection[Any], smtp_sink: SmtpSink
) -> None:
    orders, ledger = _accepted_orders(1)
    row = _confirm(orders[0])
    assert outbox_deliver(outbox_id=row.pk) == "sent"
    duplicate = build_email(row).message()
    del duplicate["Message-ID"]
    duplicate["Message-ID"] = f"<{uuid.uuid4()}@elsewhere>"  # the naive resend: a new message
    with smtplib.SMTP("127.0.0.1", smtp_sink.port) as smtp:
        smtp.send_message(duplicate)

    result = _check(conn, ledger, smtp_sink)

    assert not result["ok"] and "several distinct messages" in result["detail"]


def test_a_customer_without_an_address_is_not_counted(conn: psycopg.Connection[Any], smtp_sink: SmtpSink) -> None:
    orders, ledger = _accepted_orders(1)
    assert outbox_deliver(outbox_id=_confirm(orders[0]).pk) == "sent"
    nobody = UserFactory.create(username="nobody", email="")
    unreachable = place(nobody, (ProductFactory.create(), 1), key="k")  # nobody to write to: no row, no fault
    ledger.append({"kind": "order_accepted", "username": "nobody", "key": "k", "order_id": unreachable.pk})

    result = _check(conn, ledger, smtp_sink)

    assert result["ok"], result["detail"]
    assert "all 1 accepted orders" in result["detail"]
