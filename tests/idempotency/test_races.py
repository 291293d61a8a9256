"""Double submit, for real: many threads send one Idempotency-Key at once, each on its own database connection.

The twin shows what the unique-insert claim prevents: a read-then-write claim, with the database's unique
constraints switched off, lets every racer through and the customer gets several orders for one click.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from idempotency.models import IdempotencyKey, IdempotencyKeyStatus
from mail.models import OutboxMessage
from orders.models import Order, OrderLine
from orders.placement import do_order_create
from orders.ports import payment_port
from orders.services import LineRequest, ShippingAddress
from payments.models import Payment
from shop.models import Product
from tests.concurrency import BARRIER_TIMEOUT_S, constraint_switched_off, run_concurrently
from tests.conftest import DEFAULT_ADDRESS, bearer_client, order_payload

pytestmark = pytest.mark.django_db(transaction=True)

RACERS = 20


@pytest.fixture
def captures_enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the payment tasks order placement sends after commit, instead of sending them to a broker."""
    sent: list[int] = []
    monkeypatch.setattr(payment_port, "capture_enqueue", sent.append)
    return sent


def test_twenty_concurrent_submissions_with_one_key_make_exactly_one_order(
    alice: User, product_factory: Any, captures_enqueued: list[int]
) -> None:
    product = product_factory(stock_on_hand=50)
    payload = order_payload((product.pk, 2))
    clients = [bearer_client(alice) for _ in range(RACERS)]

    def submit(index: int) -> Any:
        return clients[index].post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="double-click")

    replies = [outcome.unwrap() for outcome in run_concurrently(submit, RACERS)]

    # Double submit: exactly one order, one set of lines, one payment, one stock decrement, one payment task.
    assert Order.objects.count() == 1
    order = Order.objects.get()
    assert OrderLine.objects.filter(order=order).count() == 1
    assert Payment.objects.filter(order=order).count() == 1
    assert Product.objects.get(pk=product.pk).stock_on_hand == 48
    assert captures_enqueued == [order.pk]

    originals = [reply for reply in replies if reply.status_code == 201 and "Idempotent-Replayed" not in reply]
    replayed = [reply for reply in replies if reply.status_code == 201 and "Idempotent-Replayed" in reply]
    in_flight = [reply for reply in replies if reply.status_code == 409]
    assert len(originals) == 1, [reply.status_code for reply in replies]
    assert len(originals) + len(replayed) + len(in_flight) == RACERS, [reply.status_code for reply in replies]
    original = originals[0]
    assert original.json()["id"] == order.pk
    for reply in in_flight:
        assert reply["Content-Type"] == "application/problem+json"
        assert reply.json()["code"] == "request_in_flight"
        assert int(reply["Retry-After"]) >= 1
    for reply in replayed:
        assert reply.content == original.content
        assert reply["Idempotent-Replayed"] == "true"

    # Every later replay is the original, byte for byte, with the same ETag and Location.
    for _ in range(3):
        later = bearer_client(alice).post(
            "/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="double-click"
        )
        assert later.status_code == 201
        assert later.content == original.content
        assert later["Idempotent-Replayed"] == "true"
        assert (later["ETag"], later["Location"]) == (original["ETag"], original["Location"])
    key = IdempotencyKey.objects.get()
    assert key.status == IdempotencyKeyStatus.COMPLETED
    assert Order.objects.count() == 1


def test_twin_read_then_write_claim_without_unique_constraints_makes_several_orders(
    alice: User, product_factory: Any
) -> None:
    """Protection off: check 'is the key known?' then insert, with no unique constraint to catch the loser."""
    product = product_factory(stock_on_hand=50)
    racers = 5
    everyone_checked = threading.Barrier(racers)

    def naive_claim_and_place(index: int) -> str:
        # The bug: a read, then a write. Every racer reads "no such key" before any of them writes it.
        if IdempotencyKey.objects.filter(user=alice, key="double-click").exists():
            return "replayed"
        everyone_checked.wait(timeout=BARRIER_TIMEOUT_S)
        IdempotencyKey.objects.create(user=alice, key="double-click", fingerprint="same", locked_at=timezone.now())
        with transaction.atomic():
            do_order_create(
                customer=alice,
                lines=[LineRequest(product_id=product.pk, quantity=1)],
                shipping_address=ShippingAddress(**DEFAULT_ADDRESS),
                note="",
                idempotency_key="double-click",
                fingerprint="same",
            )
        return "placed"

    def remove_duplicates() -> None:
        Payment.objects.all().delete()
        OutboxMessage.objects.all().delete()  # the confirmations protect their orders
        Order.objects.all().delete()
        IdempotencyKey.objects.all().delete()

    with (
        constraint_switched_off(Order, "order_one_per_idempotency_key", clean_up=remove_duplicates),
        constraint_switched_off(IdempotencyKey, "idempotency_key_unique_per_user", clean_up=remove_duplicates),
    ):
        outcomes = [outcome.unwrap() for outcome in run_concurrently(naive_claim_and_place, racers)]
        orders_for_one_click = Order.objects.filter(customer=alice, idempotency_key="double-click").count()
        keys_for_one_click = IdempotencyKey.objects.filter(user=alice, key="double-click").count()

    # The race happened: one click, several orders, and the stock went down once per duplicate.
    assert outcomes == ["placed"] * racers
    assert orders_for_one_click == racers
    assert keys_for_one_click == racers
    assert Product.objects.get(pk=product.pk).stock_on_hand == 50 - racers
