"""Writing the outbox: one row per event, in the event's transaction, and no row (no mail) for a rolled-back one.

Each guarantee has a twin that shows the failure it prevents: mail sent from inside a transaction that then
rolls back, and two rows (two mails) for one event when the unique constraint is off.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from mail import dispatch
from mail.models import MailEvent, OutboxMessage, OutboxStatus
from mail.services import (
    OutboxOutsideTransaction,
    account_mail_enqueue,
    order_mail_enqueue,
    outbox_enqueue,
)
from mail.transport import smtp_connection
from orders.models import Order, OrderStatus
from tests.concurrency import constraint_switched_off, run_concurrently
from tests.factories import ProductFactory, UserFactory
from tests.mail.conftest import SmtpSink
from tests.orders.support import ADDRESS, place

ORDER_EVENTS = ["order_placed", "order_paid", "payment_failed", "order_cancelled", "order_fulfilled"]


class Boom(Exception):
    pass


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The delivery tasks the outbox asked for (the seam mail.dispatch.mail_delivery_enqueue), in order."""
    sent: list[int] = []
    monkeypatch.setattr(dispatch, "mail_delivery_enqueue", sent.append)
    return sent


def _order(customer: User) -> Order:
    return place(customer, (ProductFactory.create(price=Decimal("12.50")), 2), key=str(uuid.uuid4()))


@pytest.mark.django_db(transaction=True)  # a real autocommit connection, not the test's own transaction
def test_enqueue_outside_a_transaction_is_refused_and_writes_nothing() -> None:
    alice = UserFactory.create(username="alice")
    with pytest.raises(OutboxOutsideTransaction):
        outbox_enqueue(event=MailEvent.PASSWORD_RESET, event_key="k", recipient="a@example.com", user=alice)
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_the_row_and_its_task_commit_with_the_event(
    alice: User, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        result = outbox_enqueue(event=MailEvent.VERIFY_EMAIL, event_key="signup", recipient=alice.email, user=alice)
        assert enqueued == []  # Phantom mail: nothing is handed to a worker before the commit
    assert result.created
    assert enqueued == [result.message.pk]
    row = OutboxMessage.objects.get()
    assert (row.status, row.attempts, row.recipient) == (OutboxStatus.PENDING, 0, alice.email)


@pytest.mark.django_db
def test_a_rolled_back_event_leaves_no_row_and_sends_nothing(
    alice: User, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Boom), transaction.atomic():
        outbox_enqueue(event=MailEvent.VERIFY_EMAIL, event_key="signup", recipient=alice.email, user=alice)
        raise Boom  # the event's own transaction fails after the mail was promised
    assert not OutboxMessage.objects.exists()
    assert enqueued == []


@pytest.mark.django_db
def test_twin_mail_sent_inside_the_transaction_goes_out_for_an_event_that_never_happened(
    alice: User, smtp_sink: SmtpSink
) -> None:
    """The textbook mistake: send_mail() in the middle of the use case. The sign-up rolls back; the mail is out."""
    with pytest.raises(Boom), transaction.atomic():
        newcomer = User.objects.create_user(username="newcomer", email="newcomer@example.com", password="x")
        with smtp_connection() as smtp:
            smtp.send_messages([EmailMessage("Welcome!", f"Hello {newcomer.username}", to=[newcomer.email])])
        raise Boom  # e.g. the next step of the use case fails
    assert not User.objects.filter(username="newcomer").exists()  # the account never happened ...
    assert len(smtp_sink.messages()) == 1  # ... and its welcome mail is in somebody's inbox


@pytest.mark.django_db
def test_one_event_is_one_row_however_often_it_is_enqueued(
    alice: User, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    order = _order(alice)
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            first = order_mail_enqueue(order=order, event="order_paid")
        with transaction.atomic():
            again = Order.objects.get(pk=order.pk)
            second = order_mail_enqueue(order=again, event="order_paid")  # a retried task, a replayed request
            placed = order_mail_enqueue(order=again, event="order_placed")  # the placement already wrote this one
    assert first is not None and second is not None and placed is not None
    assert (first.created, second.created, placed.created) == (True, False, False)
    assert second.message.pk == first.message.pk
    assert sorted(OutboxMessage.objects.values_list("event", flat=True)) == ["order_paid", "order_placed"]
    assert enqueued == [first.message.pk]  # the repeats do not even nudge a worker again


@pytest.mark.django_db(transaction=True)
def test_concurrent_enqueues_of_one_event_write_one_row(enqueued: list[int]) -> None:
    alice = UserFactory.create(username="alice")
    order = _order(alice)

    def enqueue(_: int) -> int:
        with transaction.atomic():
            result = order_mail_enqueue(order=Order.objects.get(pk=order.pk), event="order_paid")
            assert result is not None
            return result.message.pk

    outcomes = run_concurrently(enqueue, 8)
    ids = {outcome.unwrap() for outcome in outcomes}
    assert len(ids) == 1  # everyone got the one row
    assert OutboxMessage.objects.filter(event="order_paid").count() == 1


@pytest.mark.django_db(transaction=True)
def test_twin_without_the_unique_constraint_one_event_becomes_several_mails(enqueued: list[int]) -> None:
    alice = UserFactory.create(username="alice")
    order = _order(alice)

    def enqueue(_: int) -> int:
        with transaction.atomic():
            result = order_mail_enqueue(order=Order.objects.get(pk=order.pk), event="order_paid")
            assert result is not None
            return result.message.pk

    def forget_the_rows() -> None:
        OutboxMessage.objects.all().delete()

    with (
        constraint_switched_off(OutboxMessage, "mail_outbox_one_row_per_event", clean_up=lambda: None),
        constraint_switched_off(OutboxMessage, "mail_outbox_one_row_per_order_event", clean_up=forget_the_rows),
    ):
        outcomes = run_concurrently(enqueue, 8)
        rows = OutboxMessage.objects.filter(event="order_paid").count()
    assert all(outcome.error is None for outcome in outcomes)
    assert rows > 1, "the race did not happen this time; the twin needs several rows to show it"


@pytest.mark.django_db
@pytest.mark.parametrize("event", ORDER_EVENTS)
def test_order_mail_enqueue_freezes_what_the_mail_says_in_the_events_transaction(
    alice: User, event: Any, enqueued: list[int]
) -> None:
    order = _order(alice)
    with transaction.atomic():
        result = order_mail_enqueue(order=order, event=event)
    # The placement wrote its confirmation itself (do_order_create): asking again returns that row.
    assert result is not None and result.created == (event != "order_placed")
    row = result.message
    assert (row.event, row.event_key, row.order_id, row.user_id) == (event, f"order:{order.pk}", order.pk, alice.pk)
    assert row.recipient == alice.email
    assert row.context["order_number"] == order.number
    assert row.context["total"] == "25.00" and row.context["currency"] == "EUR"
    line = order.lines.get()
    assert row.context["lines"] == [
        {"name": line.name, "sku": line.sku, "quantity": 2, "unit_price": "12.50", "line_total": "25.00"}
    ]
    assert row.context["shipping_address"]["city"] == ADDRESS.city
    assert row.context["order_path"] == f"/orders/{order.pk}/"


@pytest.mark.django_db
def test_a_cancelled_paid_order_says_what_is_refunded_and_an_unpaid_one_says_nothing_was_charged(
    alice: User, enqueued: list[int]
) -> None:
    paid, unpaid = _order(alice), _order(alice)
    # A closed order has returned its stock (the CHECK order_stock_released_when_closed insists on the marker).
    Order.objects.filter(pk=paid.pk).update(
        status=OrderStatus.CANCELLED, paid_at=timezone.now(), stock_released_at=timezone.now()
    )
    Order.objects.filter(pk=unpaid.pk).update(status=OrderStatus.CANCELLED, stock_released_at=timezone.now())
    with transaction.atomic():
        refunded = order_mail_enqueue(order=Order.objects.get(pk=paid.pk), event="order_cancelled")
        not_charged = order_mail_enqueue(order=Order.objects.get(pk=unpaid.pk), event="order_cancelled")
    assert refunded is not None and refunded.message.context["refund"] == "25.00"
    assert not_charged is not None and not_charged.message.context["refund"] is None


@pytest.mark.django_db(transaction=True)
def test_order_mail_outside_the_transaction_and_non_order_events_are_refused() -> None:
    order = _order(UserFactory.create(username="alice"))
    with pytest.raises(OutboxOutsideTransaction):
        order_mail_enqueue(order=order, event="order_paid")
    with pytest.raises(ValueError), transaction.atomic():
        order_mail_enqueue(order=order, event="password_reset")  # type: ignore[arg-type]
    assert list(OutboxMessage.objects.values_list("event", flat=True)) == ["order_placed"]  # the placement's own


@pytest.mark.django_db
def test_a_customer_without_an_address_gets_no_row(alice: User) -> None:
    User.objects.filter(pk=alice.pk).update(email="")
    order = _order(alice)  # placed without a confirmation: nobody to write to
    with transaction.atomic():
        assert order_mail_enqueue(order=Order.objects.get(pk=order.pk), event="order_paid") is None
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_the_database_refuses_order_mail_without_its_order(alice: User) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboxMessage.objects.create(
            event="order_paid", event_key="order:x", recipient=alice.email, next_attempt_at=timezone.now()
        )


@pytest.mark.django_db
def test_account_mail_is_one_message_per_account_and_address_per_window(alice: User, settings: Any) -> None:
    def request_reset() -> bool:
        with transaction.atomic():
            return account_mail_enqueue(
                event=MailEvent.PASSWORD_RESET, user=alice, recipient=alice.email, window_s=3600
            ).created

    assert request_reset() is True
    assert request_reset() is False  # a double click, a second request within the hour: the first mail answers
    with transaction.atomic():
        other_address = account_mail_enqueue(
            event=MailEvent.VERIFY_EMAIL, user=alice, recipient="new@example.com", window_s=3600
        )
    assert other_address.created
    assert OutboxMessage.objects.count() == 2
    assert alice.email not in OutboxMessage.objects.get(event="password_reset").event_key  # no personal data
