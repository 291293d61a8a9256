"""Order mail, end to end: every state change of an order sends its customer exactly one message.

The state changes run through the shop's own use cases (the order API, the web checkout's service, the payment
task, cancel, fulfil); a real Celery worker process captures the payment at the provider simulator and delivers
the mail to the real SMTP sink (mail/sink.py, its own process). What is counted is what the sink received:
every SMTP delivery (its journal) and every distinct message.

- An API order that is paid and shipped: order_placed, order_paid, order_fulfilled, one each. A replayed
  request, a redelivered capture task, redelivered mail tasks and the re-drive add no delivery at all.
- A web checkout whose card is declined: order_placed and payment_failed; a paid API order cancelled twice:
  one order_cancelled that names the refund.
- The mail server down: the orders are accepted and paid all the same; the mail waits and, once the server is
  back, the re-drive sends each message once.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient
from zeal import zeal_context, zeal_ignore

from accounts.models import User
from cart.services import cart_add_item, cart_checkout
from core.errors import Conflict
from mail import dispatch
from mail.models import OutboxMessage, OutboxStatus
from mail.tasks import mail_redrive_task
from orders.models import Order, OrderStatus
from orders.services import order_cancel, order_fulfil
from payments.tasks import payment_capture_enqueue
from shop.models import Product
from tests.capacity.infra import ProviderSimulator, free_port, wait_for
from tests.conftest import bearer_client, order_payload
from tests.factories import ProductFactory, UserFactory
from tests.mail.conftest import SmtpSink, start_worker, stop_worker
from tests.orders.support import ADDRESS

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def provider() -> Iterator[ProviderSimulator]:
    """The payment provider simulator on a free port (never the developer's on 8100)."""
    server = ProviderSimulator()
    yield server
    server.close()


class Worker:
    """A `celery worker` process on this run's broker, paying at `provider` and mailing `email_port`."""

    def __init__(self, *, log: Path, provider: ProviderSimulator, email_port: int) -> None:
        # Leftovers of earlier tests (tasks for rows that no longer exist) would only slow this worker down.
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("celery")
        self.log = log
        env = {
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(email_port),
            "EMAIL_USE_TLS": "false",
            "EMAIL_CONNECT_TIMEOUT_S": "1",
            "PAYMENT_PROVIDER_URL": provider.url,
            "PAYMENT_BREAKER_NAME": f"test-{uuid.uuid4().hex}",  # a circuit of its own, closed
            "MAIL_RETRY_BASE_S": "0.2",
            "MAIL_RETRY_CAP_S": "0.5",
        }
        self.process = start_worker(broker_url=settings.CELERY_BROKER_URL, log=log, extra_env=env)
        wait_for(self._ready, timeout_s=120, what="the Celery worker to be ready")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the worker exited: {self.log.read_text()[-3000:]}")
        return " ready." in self.log.read_text()

    def results(self, task: str) -> list[str]:
        """What each finished run of `task` returned (Celery logs "Task <name>[<id>] succeeded in <s>: <result>")."""
        pattern = r"Task " + re.escape(task) + r"\[[^\]]+\] succeeded in \S+: ('\w+'|\{[^}]*\})"
        return re.findall(pattern, self.log.read_text())

    def outcomes(self, task: str) -> Counter[str]:
        return Counter(result.strip("'") for result in self.results(task))

    def stop(self) -> None:
        stop_worker(self.process)


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Worker] = []

    def start(*, provider: ProviderSimulator, email_port: int) -> Worker:
        started.append(Worker(log=tmp_path / f"worker-{len(started)}.log", provider=provider, email_port=email_port))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


def _customer(name: str) -> User:
    return UserFactory.create(username=name, email=f"{name}@example.com")


def _product() -> Product:
    return ProductFactory.create(price=Decimal("19.90"), stock_on_hand=10, stock_received=10)


def _api_order(client: APIClient, product: Product, key: str) -> dict[str, Any]:
    response = client.post("/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code in (200, 201), response.content
    body: dict[str, Any] = response.json()
    return body


def _status(order_id: int) -> str:
    with zeal_ignore():  # polled on purpose: the same read until the worker has moved the order
        return Order.objects.values_list("status", flat=True).get(pk=order_id)


def _rows_sent(order_id: int, events: set[str]) -> bool:
    rows = OutboxMessage.objects.filter(order_id=order_id)
    with zeal_ignore():  # polled on purpose
        return (
            set(rows.values_list("event", flat=True)) == events and not rows.exclude(status=OutboxStatus.SENT).exists()
        )


def _mail_of(sink: SmtpSink, number: str) -> Counter[str]:
    return Counter(message.event for message in sink.messages() if message.order == number)


def test_an_api_order_paid_and_shipped_sends_one_message_per_event_and_no_retry_sends_another(
    smtp_sink: SmtpSink, provider: ProviderSimulator, worker_factory: Any
) -> None:
    alice = _customer("alice")
    worker = worker_factory(provider=provider, email_port=smtp_sink.port)
    client = bearer_client(alice)

    product = _product()
    order = _api_order(client, product, key="order-1")
    assert _api_order(client, product, key="order-1")["id"] == order["id"]  # a replayed request
    wait_for(lambda: _status(order["id"]) == OrderStatus.PAID, timeout_s=60, what="the worker to capture it")
    order_fulfil(order=Order.objects.get(pk=order["id"]))
    with pytest.raises(Conflict):
        order_fulfil(order=Order.objects.get(pk=order["id"]))  # shipped twice: refused, and no second notice
    events = {"order_placed", "order_paid", "order_fulfilled"}
    wait_for(lambda: _rows_sent(order["id"], events), timeout_s=60, what="three messages sent")

    # Redelivery everywhere: the capture task, each mail task, the re-drive. Each finds its work done.
    payment_capture_enqueue(order["id"])
    rows = list(OutboxMessage.objects.filter(order_id=order["id"]).values_list("pk", flat=True))
    for outbox_id in rows:
        dispatch.mail_delivery_enqueue(outbox_id)
    mail_redrive_task.delay()
    wait_for(
        lambda: (
            worker.outcomes("mail.tasks.mail_deliver_task")["already_sent"] == len(rows)
            and worker.outcomes("payments.tasks.payment_capture_task")["skipped"] == 1
            and len(worker.results("mail.tasks.mail_redrive_task")) == 1
        ),
        timeout_s=60,
        what="the redelivered tasks to run",
    )

    assert _mail_of(smtp_sink, order["number"]) == Counter(events)  # one message per event ...
    assert len(smtp_sink.deliveries()) == 3  # ... and not one delivery more: no retry reached the server
    for stored in smtp_sink.messages():
        message = smtp_sink.message(stored.name)
        assert message.to == "alice@example.com"
        assert dict(message.headers)["X-Shop-Event"] == message.event
        assert dict(message.headers)["X-Shop-Order"] == order["number"]
        assert order["number"] in message.text and order["number"] in message.html  # both parts
    assert OutboxMessage.objects.count() == 3


def test_a_declined_web_checkout_and_a_paid_order_cancelled_twice_each_send_their_notice_once(
    smtp_sink: SmtpSink, provider: ProviderSimulator, worker_factory: Any
) -> None:
    bob = _customer("bob")
    product = _product()
    worker = worker_factory(provider=provider, email_port=smtp_sink.port)

    # The web checkout's own service; the card is declined.
    provider.control(decline_rate=1.0)
    with zeal_context():  # one request each, as from the browser: each gets its own N+1 watch
        cart = cart_add_item(user=bob, product_id=product.pk, quantity=2).cart
    with zeal_context():
        declined = cart_checkout(
            user=bob, expected_cart_version=cart.version, shipping_address=ADDRESS, note="", idempotency_key="web-1"
        ).order
    wait_for(lambda: _status(declined.pk) == OrderStatus.PAYMENT_FAILED, timeout_s=60, what="the decline")
    payment_capture_enqueue(declined.pk)  # a redelivered capture task: the order already failed
    wait_for(lambda: worker.outcomes("payments.tasks.payment_capture_task")["skipped"] == 1, what="redelivery")

    # An API order, paid, then cancelled twice (a double click; the second is a no-op).
    provider.control(decline_rate=0.0)
    paid = _api_order(bearer_client(bob), product, key="api-1")
    wait_for(lambda: _status(paid["id"]) == OrderStatus.PAID, timeout_s=60, what="the capture")
    for _ in range(2):
        with zeal_context():  # two requests
            order_cancel(order=Order.objects.get(pk=paid["id"]))

    wait_for(lambda: _rows_sent(declined.pk, {"order_placed", "payment_failed"}), timeout_s=60, what="decline mail")
    wait_for(
        lambda: _rows_sent(paid["id"], {"order_placed", "order_paid", "order_cancelled"}),
        timeout_s=60,
        what="cancel mail",
    )
    assert _mail_of(smtp_sink, str(declined.number)) == Counter({"order_placed": 1, "payment_failed": 1})
    assert _mail_of(smtp_sink, paid["number"]) == Counter({"order_placed": 1, "order_paid": 1, "order_cancelled": 1})
    assert len(smtp_sink.deliveries()) == 5
    [cancelled] = [m for m in smtp_sink.messages() if m.event == "order_cancelled"]
    notice = smtp_sink.message(cancelled.name)
    assert "19.90 EUR goes back to you" in notice.text  # the refund: what this order was charged


def test_with_the_mail_server_down_orders_are_accepted_and_paid_and_their_mail_goes_out_once_it_is_back(
    provider: ProviderSimulator, worker_factory: Any, tmp_path: Path
) -> None:
    carol = _customer("carol")
    mail_port = free_port()  # nothing listens here yet: the mail server is down
    worker = worker_factory(provider=provider, email_port=mail_port)
    client = bearer_client(carol)
    product = _product()

    orders = [_api_order(client, product, key=f"down-{index}") for index in range(2)]
    wait_for(
        lambda: all(_status(order["id"]) == OrderStatus.PAID for order in orders), timeout_s=60, what="the captures"
    )
    wait_for(
        lambda: worker.outcomes("mail.tasks.mail_deliver_task")["deferred"] >= 4,
        timeout_s=60,
        what="each message tried once",
    )
    waiting = OutboxMessage.objects.filter(order_id__in=[order["id"] for order in orders])
    assert waiting.count() == 4
    assert all(row.status == OutboxStatus.PENDING and row.attempts >= 1 for row in waiting)  # delayed, not lost

    sink = SmtpSink(port=mail_port, directory=tmp_path / "mail", hold_file=tmp_path / "hold").start()
    try:
        waiting.update(next_attempt_at=timezone.now())  # their backoff is over (the worker's is short anyway)
        mail_redrive_task.delay()
        wait_for(
            lambda: (
                _rows_sent(orders[0]["id"], {"order_placed", "order_paid"})
                and _rows_sent(orders[1]["id"], {"order_placed", "order_paid"})
            ),
            timeout_s=60,
            what="the re-drive",
        )
        for order in orders:
            assert _mail_of(sink, order["number"]) == Counter({"order_placed": 1, "order_paid": 1})
        assert len(sink.deliveries()) == 4
    finally:
        sink.stop()
