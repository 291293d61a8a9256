"""Mail in the shop's observability: the counters and gauges on /metrics, and the invariant that every mail event
has exactly one message that was sent (or is still pending within its grace)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from accounts.models import User
from mail import dispatch
from mail.models import OutboxMessage, OutboxStatus
from mail.services import order_mail_enqueue, outbox_deliver
from observability.invariants import check_mail_sent_once
from orders.models import Order, OrderStatus
from tests.factories import ProductFactory, UserFactory
from tests.mail.conftest import SmtpSink
from tests.orders.support import place

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "mail_delivery_enqueue", lambda outbox_id: None)


def _row(customer: User, event: str = "order_placed") -> OutboxMessage:
    order = place(customer, (ProductFactory.create(price=Decimal("5.00")), 1), key=str(uuid.uuid4()))
    with transaction.atomic():
        result = order_mail_enqueue(order=order, event=event)  # type: ignore[arg-type]
    assert result is not None
    return result.message


def _age(row: OutboxMessage, seconds: float) -> None:
    OutboxMessage.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))


def _gauge(text: str, name: str, **labels: str) -> float:
    label_text = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = rf"^{name}{{{label_text}}} (\S+)$" if labels else rf"^{name} (\S+)$"
    found = re.search(pattern, text, re.M)
    assert found, f"{name} {labels} not on /metrics"
    return float(found.group(1))


def test_sent_and_failed_counters_and_the_outbox_gauges(alice: User, smtp_sink: SmtpSink, settings: Any) -> None:
    before_sent = REGISTRY.get_sample_value("shop_mail_sent_total", {"event": "order_placed"}) or 0.0
    before_failed = (
        REGISTRY.get_sample_value("shop_mail_failed_total", {"event": "order_paid", "reason": "unavailable"}) or 0.0
    )
    sent = _row(alice)
    assert outbox_deliver(outbox_id=sent.pk) == "sent"
    settings.EMAIL_PORT = 9  # nothing listens there
    deferred = _row(alice, "order_paid")
    assert outbox_deliver(outbox_id=deferred.pk) == "deferred"
    _age(deferred, 600)

    text = Client().get("/metrics").content.decode()

    assert REGISTRY.get_sample_value("shop_mail_sent_total", {"event": "order_placed"}) == before_sent + 1
    failed = REGISTRY.get_sample_value("shop_mail_failed_total", {"event": "order_paid", "reason": "unavailable"})
    assert failed == before_failed + 1
    # The deferred receipt, and the second order's confirmation (written by its placement, never attempted here).
    assert _gauge(text, "shop_mail_outbox_messages", status="pending") == 2
    assert 590 <= _gauge(text, "shop_mail_oldest_pending_age_seconds") < 3600
    assert _gauge(text, "shop_metrics_source_up", source="mail") == 1


def test_an_empty_outbox_reports_age_zero(db: None) -> None:
    text = Client().get("/metrics").content.decode()
    assert _gauge(text, "shop_mail_oldest_pending_age_seconds") == 0


def test_sent_rows_and_fresh_pending_rows_keep_the_invariant(alice: User, smtp_sink: SmtpSink) -> None:
    sent, fresh, withdrawn = _row(alice), _row(alice), _row(alice)
    assert outbox_deliver(outbox_id=sent.pk) == "sent"
    OutboxMessage.objects.filter(pk=withdrawn.pk).update(status=OutboxStatus.WITHDRAWN)
    _age(fresh, 60)

    result = check_mail_sent_once()

    assert result.ok, result.detail


def test_a_message_pending_past_its_grace_breaks_the_invariant(alice: User, settings: Any) -> None:
    stuck = _row(alice)
    _age(stuck, settings.INVARIANT_MAIL_GRACE_S + 60)
    result = check_mail_sent_once()
    assert result.count == 1
    assert f"message {stuck.pk} (order_placed) is pending" in result.violations[0]


def test_a_given_up_message_breaks_the_invariant(alice: User) -> None:
    row = _row(alice)
    OutboxMessage.objects.filter(pk=row.pk).update(status=OutboxStatus.FAILED, attempts=30)
    result = check_mail_sent_once()
    assert result.count == 1 and "failed" in result.violations[0]


def test_two_rows_for_one_event_break_the_invariant(alice: User) -> None:
    row = _row(alice)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # Inside the test's transaction: the schema comes back when the test ends.
        cursor.execute('ALTER TABLE mail_outboxmessage DROP CONSTRAINT "mail_outbox_one_row_per_event"')
        cursor.execute('DROP INDEX "mail_outbox_one_row_per_order_event"')  # a partial unique index
    OutboxMessage.objects.create(
        event=row.event,
        event_key=row.event_key,
        order_id=row.order_id,
        recipient=row.recipient,
        next_attempt_at=timezone.now(),
    )
    result = check_mail_sent_once()
    assert result.count == 1
    assert result.violations == [f"order_placed for order {row.order_id}: 2 messages"]


def test_an_order_state_change_without_its_mail_breaks_the_invariant(alice: User, smtp_sink: SmtpSink) -> None:
    placed = _row(alice)
    order = Order.objects.get(outbox_messages=placed)
    assert outbox_deliver(outbox_id=placed.pk) == "sent"
    # A capture written around payment_settle_charge (a raw fix, a new code path): paid, and no receipt promised.
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID, paid_at=timezone.now())

    result = check_mail_sent_once()

    assert result.count == 1
    assert result.violations == [f"order_paid for order {order.pk} (paid): no message promised"]


def test_orders_from_before_order_mail_and_customers_without_an_address_are_owed_nothing(
    alice: User, smtp_sink: SmtpSink
) -> None:
    before = place(alice, (ProductFactory.create(), 1), key=str(uuid.uuid4()))
    OutboxMessage.objects.filter(order=before).delete()  # placed before order mail was wired
    nobody = UserFactory.create(username="nobody", email="")
    place(nobody, (ProductFactory.create(), 1), key=str(uuid.uuid4()))  # nobody to write to
    assert outbox_deliver(outbox_id=_row(alice).pk) == "sent"  # order mail is live from here on

    result = check_mail_sent_once()

    assert result.ok, result.detail
