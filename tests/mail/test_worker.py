"""Mail delivered by a real Celery worker process to a real SMTP server process.

- Sign up through the API: the verification mail arrives, and its link confirms the address.
- Forgot password: the reset mail arrives, its link sets a new password, and works only once.
- The crash: the worker is SIGKILLed after the SMTP server accepted the message and before the row is marked
  sent (its UPDATE is held on a row lock, so the kill lands exactly there). The re-drive sends the row again
  with the same Message-ID: the sink, like a mailbox, keeps one message. The twin runs a worker that makes a new
  Message-ID per attempt (tests/mail/naive_worker.py): the same crash leaves the customer two messages.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from config.celery import app as celery_app
from mail import dispatch
from mail.models import OutboxMessage, OutboxStatus
from mail.services import order_mail_enqueue
from mail.tasks import mail_deliver_task, mail_redrive_task
from tests.capacity.infra import PrivateRedis, superuser_connection, wait_for
from tests.factories import TEST_PASSWORD, ProductFactory, UserFactory
from tests.mail.conftest import SmtpSink, sink_env, start_worker, stop_worker
from tests.orders.support import place

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "Another-sturdy-pass-77"


def _wait_ready(worker: subprocess.Popen[bytes], log: Path) -> None:
    def ready() -> bool:
        if worker.poll() is not None:
            raise AssertionError(f"the worker exited: {log.read_text()[-3000:]}")
        return " ready." in log.read_text()

    wait_for(ready, timeout_s=120, what="the Celery worker to be ready")


@pytest.fixture
def shared_broker_worker(smtp_sink: SmtpSink, tmp_path: Path) -> Iterator[Path]:
    """A worker on this run's broker, so the tasks the shop sends after commit reach it for real."""
    # Leftovers of earlier tests (tasks for rows that no longer exist) would only slow this worker down.
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("celery")
    log = tmp_path / "worker.log"
    worker = start_worker(broker_url=settings.CELERY_BROKER_URL, log=log, extra_env=sink_env(smtp_sink))
    try:
        _wait_ready(worker, log)
        yield log
    finally:
        stop_worker(worker)


def _link(text: str, prefix: str) -> str:
    found = re.search(rf"https?://[^/\s]+({re.escape(prefix)}\S+/)", text)
    assert found, f"no {prefix} link in:\n{text}"
    return found.group(1)


def test_sign_up_and_find_the_verification_mail_then_confirm_the_address(
    smtp_sink: SmtpSink, shared_broker_worker: Path
) -> None:
    response = APIClient().post(
        "/api/v1/auth/register/",
        {"username": "newcomer", "email": "newcomer@example.com", "password": "Sturdy-pass-42"},
        format="json",
    )
    assert response.status_code == 201

    (stored,) = smtp_sink.wait_for_messages(1)
    message = smtp_sink.message(stored.name)
    assert (message.event, message.to) == ("verify_email", "newcomer@example.com")
    wait_for(lambda: OutboxMessage.objects.filter(status=OutboxStatus.SENT).count() == 1, what="the row marked sent")

    newcomer = User.objects.get(username="newcomer")
    assert not newcomer.is_email_verified
    browser = Client()
    browser.force_login(newcomer)
    link = _link(message.text, "/accounts/verify/")
    assert browser.get(link).status_code == 200  # a page with a button: opening a link changes nothing
    assert not User.objects.get(pk=newcomer.pk).is_email_verified
    assert browser.post(link).status_code == 302
    assert User.objects.get(pk=newcomer.pk).is_email_verified
    assert browser.post(link).status_code == 400  # single use


def test_forgot_password_reset_from_the_mailed_link_once(smtp_sink: SmtpSink, shared_broker_worker: Path) -> None:
    alice = UserFactory.create(username="alice", email="alice@example.com", verified_email="alice@example.com")

    response = APIClient().post("/api/v1/auth/password-reset/", {"email": "ALICE@example.com"}, format="json")
    assert response.status_code == 202

    (stored,) = smtp_sink.wait_for_messages(1)
    message = smtp_sink.message(stored.name)
    assert (message.event, message.to) == ("password_reset", "alice@example.com")
    link = _link(message.text, "/accounts/reset/")
    browser = Client()
    form = browser.get(link)
    assert form.status_code == 302  # the token moves into the session; the form's URL carries none
    assert browser.get(form["Location"]).status_code == 200
    done = browser.post(form["Location"], {"new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD})
    assert done.status_code == 302

    api = APIClient()
    assert (
        api.post("/api/v1/auth/token/", {"username": "alice", "password": NEW_PASSWORD}, format="json").status_code
        == 200
    )
    assert (
        api.post("/api/v1/auth/token/", {"username": "alice", "password": TEST_PASSWORD}, format="json").status_code
        == 401
    )
    assert Client().get(link).status_code == 400  # the same link again: used up
    assert alice.pk == User.objects.get(username="alice").pk


# --- The crash between send and mark ---------------------------------------------------------------------------

# Short limits so the lease runs out in seconds (the claim must outlive the task: lease > hard time limit).
CRASH_ENV = {
    "MAIL_CLAIM_LEASE_S": "7",
    "CELERY_TASK_TIME_LIMIT_S": "6",
    "CELERY_TASK_SOFT_TIME_LIMIT_S": "5",
    "EMAIL_CONNECT_TIMEOUT_S": "1",
    "EMAIL_SEND_TIMEOUT_S": "3",
}


@pytest.fixture
def private_broker() -> Iterator[PrivateRedis]:
    """The crash leaves an unacknowledged message behind: it stays in this test's own Redis."""
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


def _backend_waiting_on_the_row_lock(database: str) -> int | None:
    """The PostgreSQL backend whose UPDATE of the outbox waits for our row lock (the worker's "mark sent")."""
    with superuser_connection() as conn:
        row = conn.execute(
            """SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'
               AND query ILIKE 'UPDATE "mail_outboxmessage"%%'""",
            [database],
        ).fetchone()
    return int(row[0]) if row else None


def _terminate_backend(pid: int) -> None:
    with superuser_connection() as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", [pid])


def _send_task(broker: PrivateRedis, task: Any, *args: Any) -> None:
    with celery_app.connection_for_write(broker.url()) as connection:
        task.apply_async(args, connection=connection)


def _crash_between_send_and_mark(
    *, sink: SmtpSink, broker: PrivateRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app: str
) -> OutboxMessage:
    """Deliver one order confirmation, kill the worker in the window, re-drive it with a fresh worker."""
    monkeypatch.setattr(dispatch, "mail_delivery_enqueue", lambda outbox_id: None)  # this test sends its own tasks
    order = place(UserFactory.create(username="alice"), (ProductFactory.create(price=Decimal("9.00")), 1), key="k")
    with transaction.atomic():
        confirmation = order_mail_enqueue(order=order, event="order_placed")
    assert confirmation is not None
    row = confirmation.message
    env = {**sink_env(sink), **CRASH_ENV}
    database = str(settings.DATABASES["default"]["NAME"])
    direct = psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=database)  # holds the row lock

    sink.hold_replies()
    log = tmp_path / "worker-1.log"
    worker = start_worker(broker_url=broker.url(), log=log, extra_env=env, app=app)
    try:
        _send_task(broker, mail_deliver_task, row.pk)
        # 1. The server has the message (stored; its 250 reply is held): the claim is committed.
        wait_for(lambda: len(sink.deliveries()) == 1, timeout_s=120, what="the message to reach the server")
        # 2. Hold the row, then let the 250 through: the worker's "mark sent" UPDATE now waits on our lock.
        direct.execute("SELECT 1 FROM mail_outboxmessage WHERE id = %s FOR UPDATE", [row.pk])
        sink.release_replies()
        marking = wait_for(
            lambda: _backend_waiting_on_the_row_lock(database), timeout_s=5, what="the worker to mark it sent"
        )
        # 3. Kill it there: accepted by the SMTP server, not marked in the database. The worker dies, and so does
        # its database session (else the UPDATE it had already sent would still commit once our lock goes: the
        # window under test is the one before "sent" is committed).
        stop_worker(worker, cold=True)
        _terminate_backend(marking)
    finally:
        direct.rollback()
        direct.close()
        stop_worker(worker, cold=True)
    row.refresh_from_db()
    assert row.status == OutboxStatus.SENDING and row.sent_at is None  # the crash left the row claimed

    # 4. Once the lease is over, the re-drive hands the row to a new worker, which sends it again.
    wait_for(
        lambda: OutboxMessage.objects.filter(
            pk=row.pk, claimed_until__lt=timezone.now() - timedelta(seconds=0.5)
        ).exists(),
        timeout_s=30,
        what="the dead worker's lease to expire",
    )
    log = tmp_path / "worker-2.log"
    worker = start_worker(broker_url=broker.url(), log=log, extra_env=env, app=app)
    try:
        _wait_ready(worker, log)
        _send_task(broker, mail_redrive_task)
        wait_for(
            lambda: OutboxMessage.objects.filter(pk=row.pk, status=OutboxStatus.SENT).exists(),
            timeout_s=60,
            what=f"the re-driven row to be sent: {log}",
        )
    finally:
        stop_worker(worker)
    row.refresh_from_db()
    return row


def test_a_worker_killed_between_send_and_mark_still_leaves_one_message(
    smtp_sink: SmtpSink, private_broker: PrivateRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = _crash_between_send_and_mark(
        sink=smtp_sink, broker=private_broker, tmp_path=tmp_path, monkeypatch=monkeypatch, app="config"
    )
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)
    deliveries = smtp_sink.deliveries()
    assert len(deliveries) == 2  # at least once to the server: the crash cost one resend ...
    assert [entry["duplicate"] for entry in deliveries] == [False, True]  # ... recognised by its Message-ID
    assert len(smtp_sink.messages()) == 1  # the customer has one confirmation


def test_twin_with_a_new_message_id_per_attempt_the_same_crash_leaves_two_messages(
    smtp_sink: SmtpSink, private_broker: PrivateRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = _crash_between_send_and_mark(
        sink=smtp_sink, broker=private_broker, tmp_path=tmp_path, monkeypatch=monkeypatch, app="tests.mail.naive_worker"
    )
    assert row.status == OutboxStatus.SENT
    stored = smtp_sink.messages()
    assert len(stored) == 2  # two confirmations for one order, indistinguishable to the customer
    assert {message.event for message in stored} == {"order_placed"}
    assert len({message.message_id for message in stored}) == 2
    assert uuid.UUID(str(row.message_uuid))  # the row had a stable id; the naive worker just did not use it
