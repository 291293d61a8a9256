"""Order pages: history, detail, live status, edit with optimistic locking (conflict screen), cancel."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from zeal import zeal_ignore

from accounts.models import User
from orders.forms import order_details, sign_original
from orders.models import Order, OrderStatus
from orders.placement import order_place
from orders.services import LineRequest, ShippingAddress, order_transition, order_update_details
from shop.models import Product

pytestmark = pytest.mark.django_db

SHIPPING = ShippingAddress(name="Alice", line1="1 Rabbit Hole", city="Berlin", postal_code="10115", country="DE")


def place(user: User, product: Product, key: str, quantity: int = 1) -> Order:
    with zeal_ignore():  # set-up: a service called in a loop is not the code under test
        return order_place(
            customer=user,
            lines=[LineRequest(product_id=product.pk, quantity=quantity)],
            shipping_address=SHIPPING,
            idempotency_key=key,
        ).order


@pytest.fixture
def alice_order(alice: User, sencha: Product) -> Order:
    return place(alice, sencha, "alice-1", quantity=2)


def edit_form(order: Order, **changes: str) -> dict[str, object]:
    return {**order_details(order), **changes, "version": order.version, "original": sign_original(order)}


def test_order_history_is_paginated_with_a_constant_number_of_queries(
    alice_client: Client, alice: User, sencha: Product
) -> None:
    place(alice, sencha, "k-0")
    with CaptureQueriesContext(connection) as one_order:
        assert alice_client.get("/orders/").status_code == 200
    for index in range(1, 12):
        place(alice, sencha, f"k-{index}")
    with CaptureQueriesContext(connection) as full_page:
        first_page = alice_client.get("/orders/")
    assert len(full_page) == len(one_order)
    assert "Page 1 of 2" in first_page.content.decode()
    assert alice_client.get("/orders/?page=2").status_code == 200
    assert alice_client.get("/orders/?page=nope").status_code == 200


def test_order_detail_and_status_are_the_owners_only(
    alice_client: Client, bob_client: Client, alice_order: Order
) -> None:
    assert alice_client.get(f"/orders/{alice_order.pk}/").status_code == 200
    status = alice_client.get(f"/orders/{alice_order.pk}/status/")
    assert status.json() == {
        "status": "pending_payment",
        "status_display": "Pending payment",
        "settled": False,
        "version": alice_order.version,
    }
    assert status["Cache-Control"].startswith("max-age=0")
    # Another customer's order id looks exactly like one that does not exist.
    for url in ["/", "/status/", "/edit/", "/cancel/"]:
        assert bob_client.get(f"/orders/{alice_order.pk}{url}").status_code == 404
        assert alice_client.get(f"/orders/999999{url}").status_code == 404


def test_other_customers_cannot_edit_or_cancel_and_nothing_changes(
    bob_client: Client, alice_order: Order, sencha: Product
) -> None:
    assert bob_client.post(f"/orders/{alice_order.pk}/edit/", edit_form(alice_order, name="Bob")).status_code == 404
    assert bob_client.post(f"/orders/{alice_order.pk}/cancel/").status_code == 404
    unchanged = Order.objects.get(pk=alice_order.pk)
    assert (unchanged.shipping_name, unchanged.status, unchanged.version) == ("Alice", "pending_payment", 1)
    assert Product.objects.get(pk=sencha.pk).stock_on_hand == 18


def test_edit_saves_from_the_version_it_was_rendered_from(alice_client: Client, alice_order: Order) -> None:
    page = alice_client.get(f"/orders/{alice_order.pk}/edit/")
    assert 'name="version" value="1"' in page.content.decode()
    response = alice_client.post(f"/orders/{alice_order.pk}/edit/", edit_form(alice_order, city="Potsdam"))
    assert response.status_code == 303
    saved = Order.objects.get(pk=alice_order.pk)
    assert (saved.shipping_city, saved.version) == ("Potsdam", 2)


def test_stale_edit_shows_the_conflict_screen_and_overwrites_nothing(alice_client: Client, alice_order: Order) -> None:
    form_in_tab_two = edit_form(alice_order, line1="2 Other Street")
    # Tab one saves first.
    alice_client.post(f"/orders/{alice_order.pk}/edit/", edit_form(alice_order, city="Potsdam"))

    response = alice_client.post(f"/orders/{alice_order.pk}/edit/", form_in_tab_two)
    body = response.content.decode()
    assert response.status_code == 409
    assert "Someone else changed this order" in body
    assert "Potsdam" in body and "2 Other Street" in body
    kept = Order.objects.get(pk=alice_order.pk)
    assert (kept.shipping_city, kept.shipping_line1, kept.version) == ("Potsdam", "1 Rabbit Hole", 2)

    # Re-apply: tab two's edit lands on top of tab one's, which is kept (a field tab two did not touch).
    from tests.web.conftest import hidden_fields

    reapply = hidden_fields(body)
    assert reapply["version"] == "2"
    assert alice_client.post(f"/orders/{alice_order.pk}/edit/", reapply).status_code == 303
    merged = Order.objects.get(pk=alice_order.pk)
    assert (merged.shipping_city, merged.shipping_line1, merged.version) == ("Potsdam", "2 Other Street", 3)


def test_editing_a_paid_order_is_refused_with_a_page(alice_client: Client, alice_order: Order) -> None:
    order_transition(order_id=alice_order.pk, from_status=OrderStatus.PENDING_PAYMENT, to_status=OrderStatus.PAID)
    response = alice_client.post(f"/orders/{alice_order.pk}/edit/", edit_form(alice_order, city="Potsdam"))
    assert response.status_code == 409
    assert "can no longer be edited" in response.content.decode()
    assert alice_client.get(f"/orders/{alice_order.pk}/edit/").status_code == 303
    assert Order.objects.get(pk=alice_order.pk).shipping_city == "Berlin"


def test_bad_edit_input_is_a_400_with_the_form_again(alice_client: Client, alice_order: Order) -> None:
    response = alice_client.post(
        f"/orders/{alice_order.pk}/edit/", {**edit_form(alice_order), "country": "123", "version": "x"}
    )
    assert response.status_code == 400
    assert Order.objects.get(pk=alice_order.pk).version == 1


def test_cancel_returns_stock_once_even_when_posted_twice(
    alice_client: Client, alice_order: Order, sencha: Product
) -> None:
    assert "Yes, cancel the order" in alice_client.get(f"/orders/{alice_order.pk}/cancel/").content.decode()
    assert alice_client.post(f"/orders/{alice_order.pk}/cancel/").status_code == 303
    assert alice_client.post(f"/orders/{alice_order.pk}/cancel/").status_code == 303
    assert Order.objects.get(pk=alice_order.pk).status == OrderStatus.CANCELLED
    assert Product.objects.get(pk=sencha.pk).stock_on_hand == 20


def test_cancelling_a_fulfilled_order_is_refused_with_a_page(alice_client: Client, alice_order: Order) -> None:
    Order.objects.filter(pk=alice_order.pk).update(status=OrderStatus.FULFILLED)
    response = alice_client.post(f"/orders/{alice_order.pk}/cancel/")
    assert response.status_code == 409
    assert "cannot be cancelled" in response.content.decode()


def test_edit_service_refuses_the_stale_version_the_form_carries(alice_order: Order) -> None:
    with zeal_ignore():
        order_update_details(order=alice_order, expected_version=1, note="first")
        from core.errors import PreconditionFailed

        with pytest.raises(PreconditionFailed):
            order_update_details(order=alice_order, expected_version=1, note="second")
    assert Order.objects.get(pk=alice_order.pk).note == "first"
