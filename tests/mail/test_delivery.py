"""Delivering the outbox over real SMTP (the sink process of tests/mail/conftest.py): the message and its headers,
a retry or a duplicate that sends nothing, a dead mail server that only delays mail, and the re-drive.

The concurrency test has a twin: a naive "if not sent: send; mark sent" sends twice when two workers race.
"""

from __future__ import annotations

import smtplib
import threading
import uuid
from datetime import timedelta
from decimal import Decimal
from email import message_from_bytes
from email.message import Message
from typing import Any, cast

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from mail import dispatch
from mail.messages import build_email, outbox_message_id
from mail.models import MailEvent, OutboxMessage, OutboxStatus
from mail.services import (
    account_mail_enqueue,
    is_permanent_refusal,
    order_mail_enqueue,
    outbox_deliver,
    outbox_redrive,
)
from mail.transport import smtp_connection
from orders.models import Order
from tests.capacity.infra import free_port
from tests.concurrency import run_concurrently
from tests.factories import ProductFactory, UserFactory
from tests.mail.conftest import SmtpSink
from tests.orders.support import place


@pytest.fixture(autouse=True)
def no_worker(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """These tests deliver by calling the service; the tasks the outbox would send are only recorded."""
    sent: list[int] = []
    monkeypatch.setattr(dispatch, "mail_delivery_enqueue", sent.append)
    return sent


def _order(customer: User, name: str = "Sencha & Co") -> Order:
    product = ProductFactory.create(price=Decimal("12.50"), name=name)
    return place(customer, (product, 2), key=str(uuid.uuid4()))


def _order_mail(customer: User, event: str = "order_placed") -> OutboxMessage:
    order = _order(customer)
    with transaction.atomic():
        result = order_mail_enqueue(order=order, event=event)  # type: ignore[arg-type]
    assert result is not None
    return result.message


def _plain_text(email: Message) -> str:
    part = next(part for part in email.walk() if part.get_content_type() == "text/plain")
    payload = cast(bytes, part.get_payload(decode=True))
    return payload.decode(part.get_content_charset() or "ascii")


def _verified(user: User) -> User:
    User.objects.filter(pk=user.pk).update(verified_email=user.email)
    user.refresh_from_db()
    return user


@pytest.mark.django_db
def test_order_mail_reaches_the_smtp_server_with_both_parts_and_the_shop_headers(
    alice: User, smtp_sink: SmtpSink
) -> None:
    row = _order_mail(alice)

    assert outbox_deliver(outbox_id=row.pk) == "sent"

    stored = smtp_sink.only_message()
    order_number = row.context["order_number"]
    assert stored.event == "order_placed"
    assert stored.order == order_number
    assert stored.message_id == outbox_message_id(row)
    assert stored.subject == f"Order {order_number}: thank you, we have your order"
    assert stored.to == alice.email
    assert "Sencha & Co" in stored.text  # the plain-text part is not HTML-escaped ...
    assert "Sencha &amp; Co" in stored.html  # ... the HTML part is
    assert "25.00 EUR" in stored.text and f"/orders/{row.order_id}/" in stored.text
    headers = dict(stored.headers)
    assert headers["Auto-Submitted"] == "auto-generated"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.claimed_until) == (OutboxStatus.SENT, 1, None)
    assert row.sent_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "event", ["order_placed", "order_paid", "payment_failed", "order_cancelled", "order_fulfilled"]
)
def test_every_order_event_renders_with_its_headers(alice: User, event: str) -> None:
    row = _order_mail(alice, event)
    email = build_email(row).message()
    assert email["X-Shop-Event"] == event
    assert email["X-Shop-Order"] == row.context["order_number"]
    assert row.context["order_number"] in email["Subject"]
    parts = {part.get_content_type() for part in email.walk()}
    assert {"text/plain", "text/html"} <= parts


@pytest.mark.django_db
@pytest.mark.parametrize("event", [MailEvent.PASSWORD_RESET, MailEvent.VERIFY_EMAIL])
def test_account_mail_carries_its_event_a_fresh_link_and_no_order_header(alice: User, event: MailEvent) -> None:
    alice = _verified(alice) if event == MailEvent.PASSWORD_RESET else alice
    with transaction.atomic():
        row = account_mail_enqueue(event=event, user=alice, recipient=alice.email, window_s=600).message
    email = build_email(row).message()
    assert email["X-Shop-Event"] == str(event)
    assert email["X-Shop-Order"] is None
    text = _plain_text(email)
    assert "/accounts/reset/" in text if event == MailEvent.PASSWORD_RESET else "/accounts/verify/" in text
    # The token is made at delivery time: the outbox row holds no key to the account.
    assert "token" not in row.context and "action_url" not in row.context


@pytest.mark.django_db
def test_a_second_delivery_of_a_sent_row_sends_nothing(alice: User, smtp_sink: SmtpSink) -> None:
    row = _order_mail(alice)
    assert outbox_deliver(outbox_id=row.pk) == "sent"

    assert outbox_deliver(outbox_id=row.pk) == "already_sent"  # a retried or duplicated task

    assert len(smtp_sink.deliveries()) == 1


@pytest.mark.django_db
def test_a_row_claimed_by_a_live_worker_is_left_to_it(alice: User, smtp_sink: SmtpSink) -> None:
    row = _order_mail(alice)
    OutboxMessage.objects.filter(pk=row.pk).update(
        status=OutboxStatus.SENDING, claimed_until=timezone.now() + timedelta(minutes=5), attempts=1
    )
    assert outbox_deliver(outbox_id=row.pk) == "claimed_elsewhere"
    assert smtp_sink.deliveries() == []


@pytest.mark.django_db(transaction=True)
def test_racing_deliveries_of_one_row_send_it_once(smtp_sink: SmtpSink) -> None:
    row = _order_mail(UserFactory.create(username="alice"))

    outcomes = run_concurrently(lambda _: outbox_deliver(outbox_id=row.pk), 6)

    results = sorted(outcome.unwrap() for outcome in outcomes)
    assert results.count("sent") == 1
    assert set(results) <= {"sent", "claimed_elsewhere", "already_sent"}
    assert len(smtp_sink.deliveries()) == 1


def naive_deliver(outbox_id: int, *, both_have_read: threading.Barrier) -> None:
    """ANTI-PATTERN, on purpose (the twin below): read, check, send, mark. No claim."""
    message = OutboxMessage.objects.get(pk=outbox_id)
    if message.status == OutboxStatus.SENT:
        return
    both_have_read.wait(timeout=30)  # the window every real race has: both saw "pending"
    with smtp_connection() as smtp:
        smtp.send_messages([build_email(message)])
    OutboxMessage.objects.filter(pk=outbox_id).update(status=OutboxStatus.SENT, sent_at=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_twin_without_the_claim_two_workers_both_send(smtp_sink: SmtpSink) -> None:
    row = _order_mail(UserFactory.create(username="alice"))
    both_have_read = threading.Barrier(2)

    outcomes = run_concurrently(lambda _: naive_deliver(row.pk, both_have_read=both_have_read), 2)

    assert all(outcome.error is None for outcome in outcomes)
    assert len(smtp_sink.deliveries()) == 2  # the customer got the confirmation twice


@pytest.mark.django_db
def test_a_dead_mail_server_defers_the_message_with_backoff_and_the_redrive_sends_it_later(
    alice: User, dead_mail_server: int, settings: Any, tmp_path: Any, no_worker: list[int]
) -> None:
    row = _order_mail(alice)

    assert outbox_deliver(outbox_id=row.pk) == "deferred"

    row.refresh_from_db()
    assert (row.status, row.attempts, row.claimed_until) == (OutboxStatus.PENDING, 1, None)
    assert "ConnectionRefused" in row.last_error
    assert row.next_attempt_at > timezone.now()  # backoff: not retried straight away
    assert outbox_deliver(outbox_id=row.pk) == "not_due"
    assert outbox_redrive().as_dict() == {"lost_nudges": 0, "due_retries": 0, "expired_claims": 0}

    # The server comes back; once the backoff is over the re-drive hands the row to a worker again.
    sink = SmtpSink(port=free_port(), directory=tmp_path / "back", hold_file=tmp_path / "hold").start()
    try:
        settings.EMAIL_PORT = sink.port
        later = row.next_attempt_at + timedelta(seconds=1)
        assert outbox_redrive(now=later).due_retries == 1
        assert no_worker == [row.pk]
        OutboxMessage.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
        assert outbox_deliver(outbox_id=row.pk) == "sent"
        stored = sink.only_message()
    finally:
        sink.stop()
    assert stored.message_id == outbox_message_id(row)  # the same message as the attempt that failed


@pytest.mark.django_db
def test_after_max_attempts_the_message_is_given_up(alice: User, dead_mail_server: int, settings: Any) -> None:
    settings.MAIL_MAX_ATTEMPTS = 2
    row = _order_mail(alice)
    assert outbox_deliver(outbox_id=row.pk) == "deferred"
    OutboxMessage.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert outbox_deliver(outbox_id=row.pk) == "gave_up"
    row.refresh_from_db()
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, 2)
    assert outbox_redrive(now=timezone.now() + timedelta(days=2)).due_retries == 0  # a given-up row stays put


def test_only_a_refusal_of_the_message_itself_is_final() -> None:
    assert is_permanent_refusal(smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"no such user")}))
    assert not is_permanent_refusal(smtplib.SMTPRecipientsRefused({"a@example.com": (451, b"try later")}))
    assert is_permanent_refusal(smtplib.SMTPDataError(554, b"rejected as spam"))
    assert not is_permanent_refusal(smtplib.SMTPDataError(421, b"busy"))
    # Our own login or sender refused: the shop's configuration, fixed by the operator; retried meanwhile.
    assert not is_permanent_refusal(smtplib.SMTPAuthenticationError(535, b"bad credentials"))
    assert not is_permanent_refusal(smtplib.SMTPSenderRefused(550, b"not allowed", "shop@example.com"))
    assert not is_permanent_refusal(ConnectionRefusedError())


@pytest.mark.django_db
def test_the_redrive_finds_lost_nudges_due_retries_and_dead_claims_but_not_fresh_rows(
    alice: User, no_worker: list[int], settings: Any
) -> None:
    settings.MAIL_REDRIVE_AFTER_S = 60
    now = timezone.now()
    rows = [_order_mail(alice) for _ in range(6)]
    fresh, lost, retry, dead, live, sent = rows
    OutboxMessage.objects.filter(pk=lost.pk).update(created_at=now - timedelta(minutes=5))
    OutboxMessage.objects.filter(pk=retry.pk).update(attempts=2, next_attempt_at=now - timedelta(seconds=1))
    OutboxMessage.objects.filter(pk=dead.pk).update(
        status=OutboxStatus.SENDING, attempts=1, claimed_until=now - timedelta(seconds=1)
    )
    OutboxMessage.objects.filter(pk=live.pk).update(
        status=OutboxStatus.SENDING, attempts=1, claimed_until=now + timedelta(minutes=1)
    )
    OutboxMessage.objects.filter(pk=sent.pk).update(
        status=OutboxStatus.SENT, sent_at=now, created_at=now - timedelta(hours=1)
    )
    no_worker.clear()

    report = outbox_redrive(now=now)

    assert report.as_dict() == {"lost_nudges": 1, "due_retries": 1, "expired_claims": 1}
    assert sorted(no_worker) == sorted([lost.pk, retry.pk, dead.pk])
    assert fresh.pk not in no_worker  # its own after-commit task is presumably still queued


@pytest.mark.django_db
def test_a_reset_link_for_an_address_the_account_no_longer_has_is_withdrawn_not_sent(
    alice: User, smtp_sink: SmtpSink
) -> None:
    alice = _verified(alice)
    with transaction.atomic():
        row = account_mail_enqueue(
            event=MailEvent.PASSWORD_RESET, user=alice, recipient=alice.email, window_s=600
        ).message
    User.objects.filter(pk=alice.pk).update(email="elsewhere@example.com", verified_email="elsewhere@example.com")

    assert outbox_deliver(outbox_id=row.pk) == "withdrawn"

    row.refresh_from_db()
    assert row.status == OutboxStatus.WITHDRAWN
    assert smtp_sink.deliveries() == []


@pytest.mark.django_db
def test_the_text_part_is_readable_mail_not_markup(alice: User) -> None:
    row = _order_mail(alice)
    body = _plain_text(message_from_bytes(build_email(row).message().as_bytes()))  # as it goes over the wire
    assert "<" not in body and "Thank you for your order" in body
