"""The database cart: every change bumps the version under the cart row lock; double submits add once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from zeal import zeal_ignore

from accounts.models import User
from cart.models import Cart, CartItem
from cart.selectors import cart_get
from cart.services import CartRefused, cart_add_item, cart_remove_item, cart_set_quantity
from shop.models import Product
from tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db

# `with zeal_ignore()` below: a service called several times in one test body is not an N+1. Requests made
# through the test client are not wrapped, so each page is still checked in its own zeal context.


def test_each_change_bumps_the_version_and_two_tabs_see_one_cart(alice: User, sencha: Product) -> None:
    with zeal_ignore():
        first = cart_add_item(user=alice, product_id=sencha.pk, quantity=2)
        second = cart_set_quantity(user=alice, product_id=sencha.pk, quantity=5)
        assert (first.cart.version, second.cart.version) == (2, 3)
        # Another tab reads the same row: the cart lives in the database, not in a session.
        assert cart_get(user=alice).quantity_of(sencha.pk) == 5


def test_the_same_form_token_adds_once(alice: User, sencha: Product) -> None:
    with zeal_ignore():
        first = cart_add_item(user=alice, product_id=sencha.pk, quantity=1, form_token="form-1")
        again = cart_add_item(user=alice, product_id=sencha.pk, quantity=1, form_token="form-1")
        assert (first.changed, again.changed) == (True, False)
        assert cart_get(user=alice).quantity_of(sencha.pk) == 1
        assert Cart.objects.get(user=alice).version == 2


def test_repeated_set_and_remove_change_nothing_the_second_time(alice: User, sencha: Product) -> None:
    with zeal_ignore():
        cart_add_item(user=alice, product_id=sencha.pk, quantity=1)
        assert cart_set_quantity(user=alice, product_id=sencha.pk, quantity=3).changed
        assert not cart_set_quantity(user=alice, product_id=sencha.pk, quantity=3).changed
        assert cart_remove_item(user=alice, product_id=sencha.pk).changed
        assert not cart_remove_item(user=alice, product_id=sencha.pk).changed
        assert Cart.objects.get(user=alice).version == 4


@override_settings(ORDER_MAX_QUANTITY_PER_LINE=5)
def test_caps_and_stock_are_refused_with_a_reason_and_write_nothing(alice: User, sencha: Product) -> None:
    with zeal_ignore():
        cart_add_item(user=alice, product_id=sencha.pk, quantity=4)
        with pytest.raises(CartRefused, match="at most 5"):
            cart_add_item(user=alice, product_id=sencha.pk, quantity=2)
        Product.objects.filter(pk=sencha.pk).update(stock_on_hand=3)
        with pytest.raises(CartRefused, match="Only 3 of Sencha left"):
            cart_set_quantity(user=alice, product_id=sencha.pk, quantity=4)
        with pytest.raises(CartRefused, match="no longer sold"):
            cart_add_item(user=alice, product_id=999_999, quantity=1)
        assert cart_get(user=alice).quantity_of(sencha.pk) == 4
        assert Cart.objects.get(user=alice).version == 2


def test_cart_views_work_without_javascript(alice_client: Client, alice: User, sencha: Product) -> None:
    response = alice_client.post(f"/cart/add/{sencha.pk}/", {"quantity": 2, "form_token": "t1"})
    assert response.status_code == 303
    assert response["Location"] == "/p/sencha/"
    assert alice_client.post(f"/cart/items/{sencha.pk}/", {"quantity": 3}).status_code == 303
    page = alice_client.get("/cart/")
    assert page.context["cart"].quantity_of(sencha.pk) == 3
    assert alice_client.post(f"/cart/items/{sencha.pk}/remove/").status_code == 303
    assert not CartItem.objects.filter(cart__user=alice).exists()


def test_bad_cart_input_gets_a_message_not_an_error(alice_client: Client, alice: User, sencha: Product) -> None:
    for data in [{"quantity": "abc"}, {"quantity": -1}, {"quantity": 10_000}, {}]:
        response = alice_client.post(f"/cart/add/{sencha.pk}/", data, follow=True)
        assert response.status_code == 200
        assert response.context["messages"], data
    missing = alice_client.post("/cart/add/999999/", {"quantity": 1}, follow=True)
    assert "no longer sold" in missing.content.decode()
    assert cart_get(user=alice).is_empty


def test_a_replayed_add_says_added_once(alice_client: Client, sencha: Product) -> None:
    alice_client.post(f"/cart/add/{sencha.pk}/", {"quantity": 1, "form_token": "same"})
    page = alice_client.post(f"/cart/add/{sencha.pk}/", {"quantity": 1, "form_token": "same"}, follow=True)
    assert [str(message) for message in page.context["messages"]] == [
        "Added 1 \N{MULTIPLICATION SIGN} Sencha to your cart."
    ]


def test_cart_page_query_count_does_not_grow_with_lines(
    alice_client: Client, alice: User, sencha: Product, earl_grey: Product
) -> None:
    cart_add_item(user=alice, product_id=sencha.pk, quantity=1)
    with CaptureQueriesContext(connection) as one_line:
        alice_client.get("/cart/")
    with zeal_ignore():
        cart_add_item(user=alice, product_id=earl_grey.pk, quantity=1)
    with CaptureQueriesContext(connection) as two_lines:
        alice_client.get("/cart/")
    assert len(one_line) == len(two_lines)


# --- Real threads: the double submit race -------------------------------------------------------------------


def _race(times: int, add: Callable[[int], object]) -> None:
    errors = [outcome.error for outcome in run_concurrently(add, times) if outcome.error is not None]
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submit_of_one_add_form_adds_once(alice: User, sencha: Product) -> None:
    _race(5, lambda index: cart_add_item(user=alice, product_id=sencha.pk, quantity=1, form_token="one-form"))
    assert CartItem.objects.get(cart__user=alice, product=sencha).quantity == 1


@pytest.mark.django_db(transaction=True)
def test_twin_without_a_form_token_the_double_submit_adds_twice(alice: User, sencha: Product) -> None:
    # Protection off: five submits of a form without a token are five adds. The token is what stops it.
    _race(5, lambda index: cart_add_item(user=alice, product_id=sencha.pk, quantity=1))
    assert CartItem.objects.get(cart__user=alice, product=sencha).quantity == 5
