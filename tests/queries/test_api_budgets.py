"""Every API list and detail endpoint costs a fixed number of queries, with 1 row behind it or with 51.

Each count is written out query by query, so a change that adds one has to say which and why.
"""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from tests.conftest import bearer_client
from tests.factories import CategoryFactory
from tests.queries.budget import (
    api_lines,
    api_results,
    assert_flat_cost,
    grow_order_lines,
    new_categories,
    new_orders,
    new_products,
)

pytestmark = pytest.mark.django_db


def test_category_list(api_client: Any, django_assert_num_queries: Any) -> None:
    # 1: the page of categories.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: api_client.get("/api/v1/categories/"),
        queries=1,
        grow=new_categories,
        rows=api_results,
    )


def test_product_list(api_client: Any, django_assert_num_queries: Any) -> None:
    # 1: the page of products JOINed to their categories (each product here has its own category).
    assert_flat_cost(
        django_assert_num_queries,
        lambda: api_client.get("/api/v1/products/"),
        queries=1,
        grow=new_products,
        rows=api_results,
    )


def test_product_list_by_category(api_client: Any, django_assert_num_queries: Any) -> None:
    tea = CategoryFactory.create(slug="tea")
    # 1: the page (the category id is a scalar subquery inside it).
    assert_flat_cost(
        django_assert_num_queries,
        lambda: api_client.get("/api/v1/products/?category=tea"),
        queries=1,
        grow=lambda count: new_products(count, category=tea),
        rows=api_results,
    )


def test_product_search(api_client: Any, django_assert_num_queries: Any) -> None:
    # 1: the page of matches.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: api_client.get("/api/v1/products/?q=budget"),
        queries=1,
        grow=new_products,
        rows=api_results,
    )


def test_product_detail(api_client: Any, django_assert_num_queries: Any) -> None:
    product = new_products(1)[0]
    # 1: the product JOINed to its category. The catalog around it grows; the detail does not notice.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: api_client.get(f"/api/v1/products/{product.pk}/"),
        queries=1,
        grow=new_products,
        rows=None,
    )


def test_order_list(alice: User, django_assert_num_queries: Any) -> None:
    client = bearer_client(alice)
    # 1 the user behind the bearer token, 2 the page of orders (JOIN centre), 3 all their lines (one IN query).
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get("/api/v1/orders/"),
        queries=3,
        grow=lambda count: new_orders(alice, count),
        rows=api_results,
    )


def test_order_list_filtered_by_status(alice: User, django_assert_num_queries: Any) -> None:
    client = bearer_client(alice)
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get("/api/v1/orders/?status=paid"),
        queries=3,
        grow=lambda count: new_orders(alice, count),
        rows=api_results,
    )


def test_order_detail(alice: User, django_assert_num_queries: Any) -> None:
    client = bearer_client(alice)
    order = new_orders(alice, 1, lines=1)[0]
    # 1 user, 2 the order (JOIN centre), 3 its lines. 1 line or 50.
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get(f"/api/v1/orders/{order.pk}/"),
        queries=3,
        grow=grow_order_lines(order),
        rows=api_lines,
    )


# --- Staff API ------------------------------------------------------------------------------------------------


def test_staff_order_list(greta: User, alice: User, django_assert_num_queries: Any) -> None:
    client = bearer_client(greta)
    # 1 user, 2 the page of orders of the granted centres (the grants are a subquery inside it), 3 their lines.
    # (guardian resolves the permission's content type once per process: the warm-up request pays for it.)
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get("/api/v1/staff/orders/"),
        queries=3,
        grow=lambda count: new_orders(alice, count),
        rows=api_results,
    )


def test_staff_order_detail(greta: User, alice: User, django_assert_num_queries: Any) -> None:
    client = bearer_client(greta)
    order = new_orders(alice, 1, lines=1)[0]
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get(f"/api/v1/staff/orders/{order.pk}/"),
        queries=3,
        grow=grow_order_lines(order),
        rows=api_lines,
    )


def test_staff_product_list(greta: User, django_assert_num_queries: Any) -> None:
    client = bearer_client(greta)
    tea = CategoryFactory.create(slug="tea")
    # 1 user, 2 the page of products of the granted categories (JOIN category).
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get("/api/v1/staff/products/"),
        queries=2,
        grow=lambda count: new_products(count, category=tea),
        rows=api_results,
    )


def test_staff_product_detail(greta: User, django_assert_num_queries: Any) -> None:
    client = bearer_client(greta)
    tea = CategoryFactory.create(slug="tea")
    product = new_products(1, category=tea)[0]
    assert_flat_cost(
        django_assert_num_queries,
        lambda: client.get(f"/api/v1/staff/products/{product.pk}/"),
        queries=2,
        grow=lambda count: new_products(count, category=tea),
        rows=None,
    )
