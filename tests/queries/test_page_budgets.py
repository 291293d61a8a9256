"""Every HTML page costs a fixed number of queries, with 1 row behind it or with 51.

Signed-in pages start with the same two queries: 1 the session, 2 the user. Pages with the shop header add
one for the cart badge (cart.context_processors.cart_summary). Paginated pages count at most
HTML_MAX_PAGES pages of rows (core.pagination.BoundedPaginator), then fetch the page.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from tests.factories import CategoryFactory
from tests.queries.budget import (
    ORDER_NUMBERS,
    PRODUCT_NAMES,
    assert_flat_cost,
    grow_cart,
    grow_order_lines,
    new_orders,
    new_products,
)

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Catalog ----------------------------------------------------------------------------------------------------


def test_home(client: Client, django_assert_num_queries: Any) -> None:
    # 1 the category menu, 2 the featured products (JOIN category). Anonymous: no session, no cart badge.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get("/"),
        queries=2,
        grow=new_products,
        rows=PRODUCT_NAMES,
    )


def test_category_page(client: Client, django_assert_num_queries: Any) -> None:
    tea = CategoryFactory.create(slug="tea", name="Tea")
    # 1 the category, 2 the bounded count, 3 the page of products, 4 the category menu.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get("/c/tea/"),
        queries=4,
        grow=lambda count: new_products(count, category=tea),
        rows=PRODUCT_NAMES,
    )


def test_search_page(client: Client, django_assert_num_queries: Any) -> None:
    # 1 the bounded count, 2 the page of matches (JOIN category), 3 the category menu.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get("/search/?q=budget"),
        queries=3,
        grow=new_products,
        rows=PRODUCT_NAMES,
    )


def test_product_page_with_a_growing_cart(alice: User, django_assert_num_queries: Any) -> None:
    product = new_products(1)[0]
    client = signed_in(alice)
    # 1 session, 2 user, 3 the product (JOIN category), 4 the cart's version, 5 its items (JOIN products) for
    # "already in your cart", 6 the cart badge. A cart of 1 line or 50.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get(f"/p/{product.slug}/"),
        queries=6,
        grow=grow_cart(alice),
        rows=None,
    )


# --- Cart -------------------------------------------------------------------------------------------------------


def test_cart_page(alice: User, django_assert_num_queries: Any) -> None:
    client = signed_in(alice)
    # 1 session, 2 user, 3 the cart's version, 4 its items JOINed to their products, 5 the cart badge.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get("/cart/"),
        queries=5,
        grow=grow_cart(alice),
        rows=PRODUCT_NAMES,
    )


def test_checkout_page(alice: User, django_assert_num_queries: Any) -> None:
    client = signed_in(alice)
    # 1 session, 2 user, 3 cart version, 4 items with products, 5 the last order's address (prefill), 6 badge.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get("/cart/checkout/"),
        queries=6,
        grow=grow_cart(alice),
        rows=PRODUCT_NAMES,
    )


# --- Orders -----------------------------------------------------------------------------------------------------


def test_order_history_page(alice: User, django_assert_num_queries: Any) -> None:
    client = signed_in(alice)
    # 1 session, 2 user, 3 the bounded count, 4 the page of orders (JOIN centre), 5 all their lines, 6 badge.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get("/orders/"),
        queries=6,
        grow=lambda count: new_orders(alice, count),
        rows=ORDER_NUMBERS,
    )


def test_order_detail_page(alice: User, django_assert_num_queries: Any) -> None:
    order = new_orders(alice, 1, lines=1)[0]
    client = signed_in(alice)
    # 1 session, 2 user, 3 the order (JOIN centre), 4 its lines, 5 badge. 1 line or 50.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get(f"/orders/{order.pk}/"),
        queries=5,
        grow=grow_order_lines(order),
        rows=PRODUCT_NAMES,
    )


def test_order_status_poll(alice: User, django_assert_num_queries: Any) -> None:
    order = new_orders(alice, 1, lines=1)[0]
    client = signed_in(alice)
    # 1 session, 2 user, 3 the order's status and version (orders.selectors.order_status_get_for_customer).
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get(f"/orders/{order.pk}/status/"),
        queries=3,
        grow=grow_order_lines(order),
        rows=None,
    )


def test_order_edit_page(alice: User, django_assert_num_queries: Any) -> None:
    order = new_orders(alice, 1, lines=1, status="pending_payment")[0]
    client = signed_in(alice)
    # 1 session, 2 user, 3 the order, 4 its lines, 5 badge.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get(f"/orders/{order.pk}/edit/"),
        queries=5,
        grow=grow_order_lines(order),
        rows=None,
    )


# --- Staff ------------------------------------------------------------------------------------------------------


def test_staff_dashboard(greta: User, alice: User, django_assert_num_queries: Any) -> None:
    client = signed_in(greta)
    # 1 session, 2 user, 3 granted centres, 4 paid orders waiting per centre (one GROUP BY), 5 granted
    # categories, 6 badge.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get("/staff/"),
        queries=6,
        grow=lambda count: new_orders(alice, count),
        rows=None,
    )


def test_staff_order_list_page(greta: User, alice: User, django_assert_num_queries: Any) -> None:
    client = signed_in(greta)
    # 1 session, 2 user, 3 bounded count, 4 the page of orders (JOIN centre), 5 their lines, 6 badge.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get("/staff/orders/"),
        queries=6,
        grow=lambda count: new_orders(alice, count),
        rows=ORDER_NUMBERS,
    )


def test_staff_order_page(greta: User, alice: User, django_assert_num_queries: Any) -> None:
    order = new_orders(alice, 1, lines=1)[0]
    client = signed_in(greta)
    # 1 session, 2 user, 3 the order (JOIN centre), 4 its lines, 5 badge.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get(f"/staff/orders/{order.pk}/"),
        queries=5,
        grow=grow_order_lines(order),
        rows=PRODUCT_NAMES,
    )


def test_staff_product_list_page(greta: User, django_assert_num_queries: Any) -> None:
    tea = CategoryFactory.create(slug="tea")
    client = signed_in(greta)
    # 1 session, 2 user, 3 bounded count, 4 the page of products (JOIN category), 5 badge.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get("/staff/products/"),
        queries=5,
        grow=lambda count: new_products(count, category=tea),
        rows=PRODUCT_NAMES,
    )


def test_staff_product_page(greta: User, django_assert_num_queries: Any) -> None:
    tea = CategoryFactory.create(slug="tea")
    product = new_products(1, category=tea)[0]
    client = signed_in(greta)
    # 1 session, 2 user, 3 the product (JOIN category), 4 badge.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get(f"/staff/products/{product.pk}/"),
        queries=4,
        grow=lambda count: new_products(count, category=tea),
        rows=None,
    )
