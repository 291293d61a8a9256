"""Web checkout: one order per rendered form, whatever the browser does; stale carts and prices are refused.

The no-JavaScript path is the one tested here (a plain form POST); tests/browser/ drives the enhanced one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from zeal import zeal_ignore

from accounts.models import User
from cart.models import Cart, CartItem
from cart.selectors import cart_get
from cart.services import CartChanged, cart_add_item, cart_checkout
from orders.models import Order
from orders.placement import do_order_create
from orders.services import LineRequest, ShippingAddress
from payments.models import Payment
from shop.models import Product
from tests.concurrency import run_concurrently
from tests.orders.support import stock_taken_behind_the_lock
from tests.web.conftest import ADDRESS, signed_in

pytestmark = pytest.mark.django_db

CheckoutForm = Callable[[Client], dict[str, str]]
SHIPPING = ShippingAddress(name="Alice", line1="1 Rabbit Hole", city="Berlin", postal_code="10115", country="DE")


@pytest.fixture
def alice_cart(alice: User, sencha: Product) -> Cart:
    return cart_add_item(user=alice, product_id=sencha.pk, quantity=2).cart


def test_no_js_checkout_places_the_order_and_empties_the_cart(
    alice_client: Client, alice: User, alice_cart: Cart, sencha: Product, checkout_form: CheckoutForm
) -> None:
    form = checkout_form(alice_client)
    response = alice_client.post("/cart/checkout/", form)

    order = Order.objects.get(customer=alice)
    assert response.status_code == 303
    assert response["Location"] == f"/orders/{order.pk}/?placed=new"
    assert order.idempotency_key == form["idempotency_key"]
    assert order.total == Decimal("25.00")
    assert cart_get(user=alice).is_empty
    assert Product.objects.get(pk=sencha.pk).stock_on_hand == 18
    assert Payment.objects.filter(order=order).count() == 1
    assert "Thank you! Order" in alice_client.get(response["Location"]).content.decode()


def test_resubmitting_the_same_form_lands_on_the_same_order(
    alice_client: Client, alice: User, alice_cart: Cart, sencha: Product, checkout_form: CheckoutForm
) -> None:
    # Double click, a resubmit after a dropped connection, back-then-submit: all send this same form again.
    form = checkout_form(alice_client)
    first = alice_client.post("/cart/checkout/", form)
    again = alice_client.post("/cart/checkout/", form)

    order = Order.objects.get(customer=alice)
    assert again.status_code == 303
    assert again["Location"] == f"/orders/{order.pk}/?placed=again"
    assert first["Location"].split("?")[0] == again["Location"].split("?")[0]
    assert Product.objects.get(pk=sencha.pk).stock_on_hand == 18  # stock taken once
    assert "already placed" in alice_client.get(again["Location"]).content.decode()


def test_each_rendered_checkout_form_has_its_own_key(
    alice_client: Client, alice_cart: Cart, checkout_form: CheckoutForm
) -> None:
    assert checkout_form(alice_client)["idempotency_key"] != checkout_form(alice_client)["idempotency_key"]


def test_stale_tab_is_told_what_changed_and_nothing_is_ordered(
    alice_client: Client,
    alice: User,
    alice_cart: Cart,
    sencha: Product,
    earl_grey: Product,
    checkout_form: CheckoutForm,
) -> None:
    stale_form = checkout_form(alice_client)
    # Another tab changes the cart after the checkout page was rendered.
    alice_client.post(f"/cart/add/{earl_grey.pk}/", {"quantity": 1})
    alice_client.post(f"/cart/items/{sencha.pk}/", {"quantity": 3})

    response = alice_client.post("/cart/checkout/", stale_form)
    body = response.content.decode()
    assert response.status_code == 409
    assert "changed in another tab" in body
    assert "Earl Grey was added (quantity 1)." in body
    assert "Sencha: quantity changed from 2 to 3." in body
    assert not Order.objects.exists()
    assert Product.objects.get(pk=sencha.pk).stock_on_hand == 20
    # The page now carries a fresh form for the cart as it is: submitting it orders exactly that.
    fresh = alice_client.post("/cart/checkout/", {**ADDRESS, **_hidden(body)})
    assert fresh.status_code == 303
    order = Order.objects.get(customer=alice)
    assert {(line.sku, line.quantity) for line in order.lines.all()} == {("TEA-1", 3), ("TEA-2", 1)}


def test_price_change_since_the_page_was_rendered_is_shown_before_ordering(
    alice_client: Client, alice: User, alice_cart: Cart, sencha: Product, checkout_form: CheckoutForm
) -> None:
    form = checkout_form(alice_client)
    Product.objects.filter(pk=sencha.pk).update(price=Decimal("14.00"))

    response = alice_client.post("/cart/checkout/", form)
    body = response.content.decode()
    assert response.status_code == 409
    assert "Sencha: was 12.50, now 14.00 EUR." in body
    assert "28.00 EUR" in body  # the new total, before anything is placed
    # Nothing half done: the order, its lines, the payment row and the stock decrement all rolled back.
    assert not Order.objects.exists()
    assert not Payment.objects.exists()
    assert Product.objects.get(pk=sencha.pk).stock_on_hand == 20
    assert cart_get(user=alice).quantity_of(sencha.pk) == 2


def test_stock_that_ran_out_is_explained_and_nothing_is_ordered(
    alice_client: Client, alice_cart: Cart, sencha: Product, checkout_form: CheckoutForm
) -> None:
    form = checkout_form(alice_client)
    Product.objects.filter(pk=sencha.pk).update(stock_on_hand=1)

    response = alice_client.post("/cart/checkout/", form)
    assert response.status_code == 409
    assert "Sencha: you asked for 2, 1 left." in response.content.decode()
    assert not Order.objects.exists()
    assert Product.objects.get(pk=sencha.pk).stock_on_hand == 1


def test_stock_the_check_constraint_refuses_is_a_409_page_not_a_500(
    alice: User, alice_cart: Cart, sencha: Product, checkout_form: CheckoutForm
) -> None:
    # Overselling past the lock: the API answers 409 (tests/orders/test_api.py); the web checkout must too.
    client = signed_in(alice, raise_request_exception=False)
    form = checkout_form(client)
    with stock_taken_behind_the_lock():
        response = client.post("/cart/checkout/", form)
    assert response.status_code == 409
    assert "sold out" in response.content.decode()
    assert not Order.objects.exists()
    assert Product.objects.get(pk=sencha.pk).stock_on_hand == 20
    assert cart_get(user=alice).quantity_of(sencha.pk) == 2


def test_a_cart_over_the_order_caps_is_refused_like_an_api_order(
    alice_client: Client, alice: User, alice_cart: Cart, sencha: Product, checkout_form: CheckoutForm, settings: Any
) -> None:
    # Cap bypass: the cap tightened after the items went in (2 in the cart, 1 allowed now); an order placed from
    # the cart obeys the same check_order_lines as an API order.
    form = checkout_form(alice_client)
    settings.ORDER_MAX_QUANTITY_PER_LINE = 1
    response = alice_client.post("/cart/checkout/", form)
    assert response.status_code == 400
    assert "invalid lines" in response.content.decode()
    assert not Order.objects.exists()
    assert Product.objects.get(pk=sencha.pk).stock_on_hand == 20


def test_invalid_address_keeps_the_same_key_so_the_fix_is_still_one_order(
    alice_client: Client, alice: User, alice_cart: Cart, checkout_form: CheckoutForm
) -> None:
    form = checkout_form(alice_client)
    response = alice_client.post("/cart/checkout/", {**form, "country": "Germany", "name": ""})
    body = response.content.decode()
    assert response.status_code == 400
    assert "Use a two-letter country code" in body
    assert f'value="{form["idempotency_key"]}"' in body
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "tampered",
    [{"cart_snapshot": "garbage"}, {"cart_version": "abc"}, {"idempotency_key": ""}, {"cart_snapshot": "1:1:NaN"}],
)
def test_a_damaged_form_is_a_400_page_not_a_500(
    alice_client: Client, alice_cart: Cart, checkout_form: CheckoutForm, tampered: dict[str, str]
) -> None:
    response = alice_client.post("/cart/checkout/", {**checkout_form(alice_client), **tampered})
    assert response.status_code == 400
    assert not Order.objects.exists()


def test_checking_out_an_empty_cart_sends_you_back_to_the_cart(
    alice_client: Client, alice: User, alice_cart: Cart, sencha: Product, checkout_form: CheckoutForm
) -> None:
    form = checkout_form(alice_client)
    alice_client.post(f"/cart/items/{sencha.pk}/remove/")
    response = alice_client.post("/cart/checkout/", {**form, "cart_version": Cart.objects.get(user=alice).version})
    assert response.status_code == 303
    assert response["Location"] == "/cart/"
    assert not Order.objects.exists()


def _hidden(body: str) -> dict[str, str]:
    from tests.web.conftest import hidden_fields

    fields = hidden_fields(body)
    fields.pop("csrfmiddlewaretoken", None)
    return fields


# --- Real threads: a double click is two requests racing -------------------------------------------------------


def _race(times: int, work: Callable[[int], object]) -> list[object]:
    """Each submit's order, or the refusal it raised."""
    return [outcome.error or outcome.value for outcome in run_concurrently(work, times)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_of_one_checkout_form_make_exactly_one_order(alice: User, sencha: Product) -> None:
    with zeal_ignore():
        version = cart_add_item(user=alice, product_id=sencha.pk, quantity=2).cart.version

    outcomes = _race(
        6,
        lambda index: cart_checkout(
            user=alice,
            expected_cart_version=version,
            shipping_address=SHIPPING,
            note="",
            idempotency_key="one-form",
            expected_prices={sencha.pk: Decimal("12.50")},
        ),
    )

    orders = list(Order.objects.filter(customer=alice))
    assert len(orders) == 1
    # Every submit lands on that one order (none is told "your cart changed" by its own twin).
    assert {outcome.order.pk for outcome in outcomes} == {orders[0].pk}  # type: ignore[attr-defined]
    assert sum(outcome.created for outcome in outcomes) == 1  # type: ignore[attr-defined]
    assert Product.objects.get(pk=sencha.pk).stock_on_hand == 18


@pytest.mark.django_db(transaction=True)
def test_two_stale_tabs_with_different_keys_order_once_and_the_other_is_told(alice: User, sencha: Product) -> None:
    with zeal_ignore():
        version = cart_add_item(user=alice, product_id=sencha.pk, quantity=2).cart.version

    outcomes = _race(
        2,
        lambda index: cart_checkout(
            user=alice,
            expected_cart_version=version,
            shipping_address=SHIPPING,
            note="",
            idempotency_key=f"tab-{index}",
        ),
    )

    assert Order.objects.filter(customer=alice).count() == 1
    assert sum(isinstance(outcome, CartChanged) for outcome in outcomes) == 1
    assert Product.objects.get(pk=sencha.pk).stock_on_hand == 18


def _naive_checkout(user: User, key: str, both_have_read: threading.Barrier) -> Order:
    """The quickly built version: read the cart, write the order, clear the cart. No lock, no version check."""
    items = list(CartItem.objects.filter(cart__user=user).values_list("product_id", "quantity"))
    both_have_read.wait()  # the double click's two requests both read the cart before either writes
    with transaction.atomic():
        order = do_order_create(
            customer=user,
            lines=[LineRequest(product_id=product_id, quantity=quantity) for product_id, quantity in items],
            shipping_address=SHIPPING,
            note="",
            idempotency_key=key,
            fingerprint="naive checkout",
        )
        CartItem.objects.filter(cart__user=user).delete()
    return order


@pytest.mark.django_db(transaction=True)
def test_twin_without_the_cart_lock_and_version_a_double_click_orders_twice(alice: User, sencha: Product) -> None:
    # Protection off: each click read the same full cart before either emptied it, so both order it.
    with zeal_ignore():
        cart_add_item(user=alice, product_id=sencha.pk, quantity=2)

    both_have_read = threading.Barrier(2)
    outcomes = _race(2, lambda index: _naive_checkout(alice, f"click-{index}", both_have_read))

    assert all(isinstance(outcome, Order) for outcome in outcomes), outcomes
    assert Order.objects.filter(customer=alice).count() == 2
    assert Product.objects.get(pk=sencha.pk).stock_on_hand == 16
