"""Order mail is written in the transaction of its state change: a rolled-back change leaves no row and sends
nothing, and a repeated change (a double submit, a redelivered task, the reconciliation settling again, a
second cancel or fulfil) finds its event's row and adds none.

The twin sends the confirmation from inside the checkout's transaction, as quickly built shops do: the
checkout rolls back (a price changed) and the customer has a confirmation for an order that does not exist.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core.mail import EmailMessage
from zeal import zeal_context

from accounts.models import User
from cart.services import PricesChanged, cart_add_item, cart_checkout
from core.errors import Conflict
from mail import dispatch
from mail.messages import build_email
from mail.models import OutboxMessage, OutboxStatus
from mail.services import outbox_deliver
from mail.transport import smtp_connection
from orders import placement as order_placement
from orders.models import Order
from orders.placement import order_place
from orders.ports import payment_port
from orders.services import LineRequest, order_cancel, order_fulfil
from payments.models import Payment
from payments.services import payment_settle_charge, payment_settle_declined
from shop.models import Product
from tests.concurrency import run_concurrently
from tests.factories import ProductFactory, UserFactory
from tests.mail.conftest import SmtpSink
from tests.orders.support import ADDRESS, place

pytestmark = pytest.mark.django_db(transaction=True)  # real commits: on_commit runs, threads see each other


@pytest.fixture
def delivered_at_commit(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The worker, at once: each row's delivery runs right after its transaction commits, in this process."""
    outcomes: list[str] = []
    monkeypatch.setattr(
        dispatch, "mail_delivery_enqueue", lambda outbox_id: outcomes.append(outbox_deliver(outbox_id=outbox_id))
    )
    return outcomes


@pytest.fixture
def no_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "mail_delivery_enqueue", lambda outbox_id: None)


def _customer() -> User:
    return UserFactory.create(username=f"u{uuid.uuid4().hex[:8]}", email="buyer@example.com")


def _product(price: str = "10.00") -> Product:
    return ProductFactory.create(price=Decimal(price), stock_on_hand=20, stock_received=20)


def _events(order: Order) -> list[str]:
    return sorted(OutboxMessage.objects.filter(order=order).values_list("event", flat=True))


def _checkout_with_a_stale_price(customer: User, product: Product) -> int:
    """A checkout that fails its price check after do_order_create; returns the cart version it left as it was."""
    with zeal_context():  # each call is its own request (its own N+1 watch), as from the browser
        cart = cart_add_item(user=customer, product_id=product.pk, quantity=1).cart
    with zeal_context(), pytest.raises(PricesChanged):
        cart_checkout(
            user=customer,
            expected_cart_version=cart.version,
            shipping_address=ADDRESS,
            note="",
            idempotency_key="checkout-1",
            expected_prices={product.pk: Decimal("9.00")},  # the page showed the old price
        )
    return cart.version


def test_a_checkout_rolled_back_after_its_confirmation_was_promised_leaves_no_row_and_sends_nothing(
    smtp_sink: SmtpSink, delivered_at_commit: list[str]
) -> None:
    customer, product = _customer(), _product("10.00")

    version = _checkout_with_a_stale_price(customer, product)  # the row was written, then rolled back

    assert not Order.objects.exists()
    assert not OutboxMessage.objects.exists()
    assert delivered_at_commit == [] and smtp_sink.messages() == []
    # The same cart checked out at the price it shows commits, and its one confirmation goes out.
    with zeal_context():
        order = cart_checkout(
            user=customer,
            expected_cart_version=version,
            shipping_address=ADDRESS,
            note="",
            idempotency_key="checkout-2",
            expected_prices={product.pk: Decimal("10.00")},
        ).order
    assert delivered_at_commit == ["sent"]
    assert [(m.event, m.order) for m in smtp_sink.messages()] == [("order_placed", order.number)]


def test_twin_a_confirmation_sent_inside_the_checkout_goes_out_for_an_order_that_never_happened(
    smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    def send_now(*, order: Order, event: str) -> None:
        # The textbook mistake: send_mail() in the middle of the use case, before its transaction commits.
        message = EmailMessage(
            f"Order {order.number}: thank you",
            "We have your order.",
            to=["buyer@example.com"],
            headers={"X-Shop-Event": event, "X-Shop-Order": str(order.number)},
        )
        with smtp_connection() as smtp:
            smtp.send_messages([message])

    monkeypatch.setattr(order_placement, "order_mail_enqueue", send_now)
    customer, product = _customer(), _product("10.00")

    _checkout_with_a_stale_price(customer, product)

    assert not Order.objects.exists()  # the order never happened ...
    [confirmation] = smtp_sink.messages()  # ... and its confirmation is in the customer's inbox
    assert confirmation.event == "order_placed" and confirmation.order.startswith("SO-")


def test_a_double_submitted_order_writes_one_confirmation(no_delivery: None) -> None:
    customer, product = _customer(), _product()

    def submit(_: int) -> int:
        placement = order_place(
            customer=customer,
            lines=[LineRequest(product_id=product.pk, quantity=1)],
            shipping_address=ADDRESS,
            idempotency_key="same-key",
        )
        return placement.order.pk

    outcomes = run_concurrently(submit, 4)

    assert len({outcome.unwrap() for outcome in outcomes}) == 1
    assert list(OutboxMessage.objects.values_list("event", flat=True)) == ["order_placed"]


def _payment(order: Order) -> Payment:
    return Payment.objects.select_related("order").get(order=order)


def test_a_capture_settled_again_by_a_redelivered_task_or_the_reconciliation_writes_one_receipt(
    no_delivery: None,
) -> None:
    order = place(_customer(), (_product(), 1), key="k")

    outcomes = run_concurrently(lambda _: payment_settle_charge(payment=_payment(order), charge_id="ch_1"), 4)
    with zeal_context():
        again = payment_settle_charge(payment=_payment(order), charge_id="ch_1")  # the reconciliation, later

    assert sorted(outcome.unwrap() for outcome in outcomes) == ["already_captured"] * 3 + ["captured"]
    assert again == "already_captured"
    assert _events(order) == ["order_paid", "order_placed"]


def test_a_decline_recorded_twice_writes_one_notice(no_delivery: None) -> None:
    order = place(_customer(), (_product(), 1), key="k")

    with zeal_context():
        assert payment_settle_declined(payment=_payment(order)) == "declined"
    with zeal_context():
        assert payment_settle_declined(payment=_payment(order)) == "skipped"  # a redelivered task

    assert _events(order) == ["order_placed", "payment_failed"]


@pytest.mark.parametrize(("paid", "refund"), [(False, None), (True, "10.00")], ids=["unpaid", "paid_and_refunded"])
def test_an_order_cancelled_twice_writes_one_notice_that_names_the_refund_of_a_paid_order(
    no_delivery: None, monkeypatch: pytest.MonkeyPatch, paid: bool, refund: str | None
) -> None:
    monkeypatch.setattr(payment_port, "refund_enqueue", lambda order_id: None)  # no provider here
    order = place(_customer(), (_product("10.00"), 1), key="k")
    if paid:
        with zeal_context():
            payment_settle_charge(payment=_payment(order), charge_id="ch_1")

    for _ in range(2):  # a double click, or the reconciliation abandoning what the customer just cancelled
        with zeal_context():  # each its own request
            order_cancel(order=Order.objects.get(pk=order.pk))

    notice = OutboxMessage.objects.get(order=order, event="order_cancelled")
    assert notice.context["refund"] == refund
    text = build_email(notice).body
    assert ("10.00 EUR goes back to you" in text) == paid
    # Unpaid is not "never charged": a capture sent just before the cancel can still succeed, and is refunded.
    assert ("refunded automatically" in text) == (not paid)
    assert OutboxMessage.objects.filter(order=order, event="order_cancelled").count() == 1


def test_a_shipment_fulfilled_twice_writes_one_notice(no_delivery: None) -> None:
    order = place(_customer(), (_product(), 1), key="k")
    payment_settle_charge(payment=_payment(order), charge_id="ch_1")

    order_fulfil(order=order)
    with pytest.raises(Conflict):
        order_fulfil(order=order)

    assert _events(order) == ["order_fulfilled", "order_paid", "order_placed"]
    assert not OutboxMessage.objects.exclude(status=OutboxStatus.PENDING).exists()
