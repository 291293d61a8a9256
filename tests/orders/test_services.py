"""Order write use cases, one rule per test: what is written, and what is not written when a rule refuses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from zeal import zeal_ignore

from accounts.models import User
from core.errors import Conflict, InsufficientStock, PreconditionFailed
from orders.models import Order, OrderLine, OrderStatus
from orders.placement import InvalidOrder, order_place
from orders.ports import payment_port
from orders.services import LineRequest, order_cancel, order_transition, order_update_details
from payments.models import Payment, PaymentStatus
from payments.services import payment_settle_declined
from shop.models import Product
from tests.factories import FulfilmentCentreFactory
from tests.orders.support import ADDRESS, place, stock_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Record the payment tasks the services send after commit, instead of sending them to a broker."""
    tasks: dict[str, list[int]] = {"capture": [], "refund": []}
    monkeypatch.setattr(payment_port, "capture_enqueue", tasks["capture"].append)
    monkeypatch.setattr(payment_port, "refund_enqueue", tasks["refund"].append)
    return tasks


@pytest.fixture(autouse=True)
def _repeats_are_deliberate() -> Iterator[None]:
    """These tests call a service twice on purpose (place twice, cancel twice); that is not an N+1."""
    with zeal_ignore():
        yield


def assert_nothing_written() -> None:
    assert Order.objects.count() == OrderLine.objects.count() == Payment.objects.count() == 0


def test_place_writes_order_lines_payment_and_decrements_stock_in_one_go(
    alice: User, product_factory: Any, sent: dict[str, list[int]], django_capture_on_commit_callbacks: Any
) -> None:
    tea = product_factory(price=Decimal("12.50"), stock_on_hand=5)
    coffee = product_factory(price=Decimal("3.00"), stock_on_hand=5)
    with django_capture_on_commit_callbacks(execute=True):
        order = place(alice, (tea, 2), (coffee, 1))
        # Phantom work: nothing is sent while the order is not committed yet.
        assert sent["capture"] == []

    assert (order.status, order.version, order.total, order.number) == (
        OrderStatus.PENDING_PAYMENT,
        1,
        Decimal("28.00"),
        f"SO-{order.pk:06d}",
    )
    assert list(order.lines.values_list("product_id", "quantity", "line_total")) == [
        (tea.pk, 2, Decimal("25.00")),
        (coffee.pk, 1, Decimal("3.00")),
    ]
    assert Payment.objects.get(order=order).status == PaymentStatus.PENDING
    assert (stock_of(tea), stock_of(coffee)) == (3, 4)
    assert sent["capture"] == [order.pk]


def test_placing_the_same_key_twice_returns_the_first_order(alice: User, product_factory: Any) -> None:
    tea = product_factory(stock_on_hand=5)
    first = order_place(customer=alice, lines=[LineRequest(tea.pk, 1)], shipping_address=ADDRESS, idempotency_key="k")
    again = order_place(customer=alice, lines=[LineRequest(tea.pk, 1)], shipping_address=ADDRESS, idempotency_key="k")
    assert (first.created, again.created) == (True, False)
    assert again.order.pk == first.order.pk
    assert stock_of(tea) == 4


def test_lines_for_one_product_are_merged_and_the_merged_quantity_obeys_the_cap(
    alice: User, product_factory: Any, settings: Any
) -> None:
    tea = product_factory(stock_on_hand=500)
    cap = settings.ORDER_MAX_QUANTITY_PER_LINE
    with pytest.raises(InvalidOrder) as refused:
        place(alice, (tea, cap), (tea, 1))
    assert "lines" in refused.value.extra["errors"]
    assert_nothing_written()

    order = place(alice, (tea, 2), (tea, 3))
    assert list(order.lines.values_list("quantity", flat=True)) == [5]


def test_insufficient_stock_names_every_short_line_and_writes_nothing(alice: User, product_factory: Any) -> None:
    tea, coffee = product_factory(stock_on_hand=1), product_factory(stock_on_hand=0)
    with pytest.raises(InsufficientStock) as refused:
        place(alice, (tea, 2), (coffee, 1))
    assert refused.value.extra["items"] == [
        {"product_id": tea.pk, "requested": 2, "available": 1},
        {"product_id": coffee.pk, "requested": 1, "available": 0},
    ]
    assert_nothing_written()
    assert (stock_of(tea), stock_of(coffee)) == (1, 0)


@pytest.mark.parametrize("is_active", [True, False])
def test_unknown_or_retired_products_are_refused(alice: User, product_factory: Any, is_active: bool) -> None:
    retired = product_factory(stock_on_hand=5, is_active=False)
    missing_id = retired.pk + 1000 if is_active else retired.pk
    with pytest.raises(InvalidOrder) as refused:
        order_place(
            customer=alice,
            lines=[LineRequest(missing_id, 1)],
            shipping_address=ADDRESS,
            idempotency_key="k",
        )
    assert refused.value.code == "unknown_product"
    assert_nothing_written()


def test_the_database_refuses_negative_stock_whatever_the_code_path(product_factory: Any) -> None:
    tea = product_factory(stock_on_hand=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=tea.pk).update(stock_on_hand=F("stock_on_hand") - 2)
    assert stock_of(tea) == 1


def test_edit_from_the_current_version_bumps_it(alice: User, product_factory: Any) -> None:
    order = place(alice, (product_factory(), 1))
    edited = order_update_details(order=order, expected_version=1, note="ring twice")
    assert (edited.note, edited.version) == ("ring twice", 2)


def test_edit_from_a_stale_version_is_412_and_changes_nothing(alice: User, product_factory: Any) -> None:
    order = place(alice, (product_factory(), 1))
    order_update_details(order=order, expected_version=1, note="first")
    with pytest.raises(PreconditionFailed) as refused:
        order_update_details(order=order, expected_version=1, note="second")
    assert refused.value.extra == {"current_version": 2}
    assert Order.objects.values_list("note", "version").get(pk=order.pk) == ("first", 2)


def test_edit_of_a_paid_order_is_409_not_editable(alice: User, product_factory: Any) -> None:
    order = place(alice, (product_factory(), 1))
    assert order_transition(order_id=order.pk, from_status=OrderStatus.PENDING_PAYMENT, to_status=OrderStatus.PAID)
    with pytest.raises(Conflict) as refused:
        order_update_details(order=order, expected_version=2, note="too late")
    assert refused.value.code == "not_editable"


def test_cancel_returns_stock_once_and_a_repeat_is_a_no_op(alice: User, product_factory: Any) -> None:
    tea = product_factory(stock_on_hand=5)
    order = place(alice, (tea, 2))
    assert order_cancel(order=order).status == OrderStatus.CANCELLED
    assert order_cancel(order=order).status == OrderStatus.CANCELLED
    assert stock_of(tea) == 5
    assert Order.objects.get(pk=order.pk).version == 2


def test_cancelling_a_paid_order_sends_the_refund_after_commit(
    alice: User, product_factory: Any, sent: dict[str, list[int]], django_capture_on_commit_callbacks: Any
) -> None:
    order = place(alice, (product_factory(stock_on_hand=5), 1))
    order_transition(order_id=order.pk, from_status=OrderStatus.PENDING_PAYMENT, to_status=OrderStatus.PAID)
    with django_capture_on_commit_callbacks(execute=True):
        order_cancel(order=order)
        assert sent["refund"] == []
    assert sent["refund"] == [order.pk]


def test_a_fulfilled_order_cannot_be_cancelled(alice: User, product_factory: Any) -> None:
    tea = product_factory(stock_on_hand=5)
    order = place(alice, (tea, 1))
    order_transition(order_id=order.pk, from_status=OrderStatus.PENDING_PAYMENT, to_status=OrderStatus.PAID)
    order_transition(order_id=order.pk, from_status=OrderStatus.PAID, to_status=OrderStatus.FULFILLED)
    with pytest.raises(Conflict) as refused:
        order_cancel(order=order)
    assert refused.value.code == "not_cancellable"
    assert stock_of(tea) == 4


def test_a_transition_from_the_wrong_state_moves_nothing(alice: User, product_factory: Any) -> None:
    order = place(alice, (product_factory(), 1))
    assert not order_transition(order_id=order.pk, from_status=OrderStatus.PAID, to_status=OrderStatus.FULFILLED)
    assert Order.objects.values_list("status", "version").get(pk=order.pk) == (OrderStatus.PENDING_PAYMENT, 1)


def test_a_cancel_decided_on_a_pending_order_refuses_once_the_order_is_paid(
    alice: User, product_factory: Any, sent: dict[str, list[int]]
) -> None:
    product = product_factory(stock_on_hand=3)
    order = place(alice, (product, 2))
    assert order_transition(order_id=order.pk, from_status=OrderStatus.PENDING_PAYMENT, to_status=OrderStatus.PAID)
    with pytest.raises(Conflict):
        order_cancel(order=order, only_if_status=OrderStatus.PENDING_PAYMENT)
    order.refresh_from_db()
    product.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert product.stock_on_hand == 1
    assert sent["refund"] == []


# --- Defect 2: an order that can no longer be paid holds no stock ---------------------------------------------


def test_a_failed_payment_puts_the_units_back_with_the_status_change(alice: User, product_factory: Any) -> None:
    tea, mug = product_factory(stock_on_hand=5), product_factory(stock_on_hand=3)
    order = place(alice, (tea, 2), (mug, 3))

    payment_settle_declined(payment=Payment.objects.get(order=order))

    failed = Order.objects.get(pk=order.pk)
    assert failed.status == OrderStatus.PAYMENT_FAILED
    assert failed.stock_released_at is not None
    assert (stock_of(tea), stock_of(mug)) == (5, 3)
    assert Payment.objects.get(order=order).status == PaymentStatus.FAILED


def test_a_repeated_payment_failure_returns_the_units_once(alice: User, product_factory: Any) -> None:
    tea = product_factory(stock_on_hand=5)
    order = place(alice, (tea, 2))
    payment = Payment.objects.get(order=order)

    payment_settle_declined(payment=payment)
    payment_settle_declined(payment=payment)  # a redelivered task, a reconciliation run

    assert stock_of(tea) == 5
    assert Order.objects.get(pk=order.pk).version == 2


def test_when_the_units_cannot_go_back_the_payment_failure_is_not_recorded_either(
    alice: User, product_factory: Any
) -> None:
    """One transaction: the status change and the stock return commit together or not at all."""
    tea = product_factory(stock_on_hand=5)
    order = place(alice, (tea, 2))
    # Someone wrote the received count down by hand: returning 2 units would exceed it (CHECK on the product).
    Product.objects.filter(pk=tea.pk).update(stock_received=3)

    with pytest.raises(IntegrityError):
        payment_settle_declined(payment=Payment.objects.get(order=order))

    unchanged = Order.objects.get(pk=order.pk)
    assert (unchanged.status, unchanged.version, unchanged.stock_released_at) == (
        OrderStatus.PENDING_PAYMENT,
        1,
        None,
    )
    assert Payment.objects.get(order=order).status == PaymentStatus.PENDING
    assert stock_of(tea) == 3


def test_a_payment_failed_order_cannot_be_cancelled_and_its_units_do_not_come_back_twice(
    alice: User, product_factory: Any
) -> None:
    tea = product_factory(stock_on_hand=5)
    order = place(alice, (tea, 2))
    payment_settle_declined(payment=Payment.objects.get(order=order))

    with pytest.raises(Conflict) as refused:
        order_cancel(order=order)

    assert refused.value.code == "not_cancellable"
    assert stock_of(tea) == 5


@pytest.mark.parametrize("status", [OrderStatus.CANCELLED, OrderStatus.PAYMENT_FAILED])
def test_the_database_refuses_a_closed_order_that_still_holds_stock(
    alice: User, product_factory: Any, status: OrderStatus
) -> None:
    order = place(alice, (product_factory(stock_on_hand=5), 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(status=status)  # no stock_released_at: units never returned


def test_the_database_refuses_a_live_order_marked_as_released(alice: User, product_factory: Any) -> None:
    order = place(alice, (product_factory(stock_on_hand=5), 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(stock_released_at=timezone.now())


def test_a_transition_into_a_state_without_stock_must_go_through_the_stock_release(
    alice: User, product_factory: Any
) -> None:
    order = place(alice, (product_factory(stock_on_hand=5), 1))
    with pytest.raises(AssertionError):
        order_transition(order_id=order.pk, from_status=OrderStatus.PENDING_PAYMENT, to_status=OrderStatus.CANCELLED)


# --- A new shipping country re-routes the order ---------------------------------------------------------------


def test_changing_the_shipping_country_reroutes_the_fulfilment_centre(alice: User, product_factory: Any) -> None:
    berlin = FulfilmentCentreFactory(code="ber", country_codes="DE AT")
    lyon = FulfilmentCentreFactory(code="lyo", country_codes="FR BE")
    fallback = FulfilmentCentreFactory(code="any", country_codes="", is_default=True)
    order = place(alice, (product_factory(stock_on_hand=5), 1))
    assert order.fulfilment_centre == berlin

    to_france = order_update_details(order=order, expected_version=1, shipping_address=replace(ADDRESS, country="fr"))
    assert (to_france.fulfilment_centre, to_france.shipping_country) == (lyon, "FR")

    elsewhere = order_update_details(order=order, expected_version=2, shipping_address=replace(ADDRESS, country="JP"))
    assert elsewhere.fulfilment_centre == fallback

    note_only = order_update_details(order=order, expected_version=3, note="no address change")
    assert note_only.fulfilment_centre == fallback
