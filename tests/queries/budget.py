"""Query budgets: a page costs the same number of queries with 1 row as with 50.

`assert_flat_cost` requests a URL once with one row behind it and once after 50 more rows were added, and
asserts the exact query count both times (pytest-django's django_assert_num_queries, which lists the queries
when the count is off), plus that the second response really shows more rows: a budget that only holds because
the page stopped showing data proves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from accounts.models import User
from cart.models import Cart, CartItem
from orders.models import FulfilmentCentre, Order, OrderLine, OrderStatus
from shop.models import Category, Product
from tests.factories import CategoryFactory, FulfilmentCentreFactory, ProductFactory

GROWTH = 50  # rows added between the two measurements

AssertNumQueries = Callable[..., Any]
# A test client response (Django's or DRF's: both are HttpResponse subclasses with test-only attributes).
HttpResponse = Any


def assert_flat_cost(
    assert_num_queries: AssertNumQueries,
    request: Callable[[], HttpResponse],
    *,
    queries: int,
    grow: Callable[[int], object],
    rows: Callable[[HttpResponse], int] | None,
) -> None:
    """`rows` counts what the response shows; None for a detail whose data grows around it, not on it."""
    grow(1)
    request()  # steady state: per-process caches (content types, permissions) are warm, as in a running app
    with assert_num_queries(queries):
        with_one = request()
    assert with_one.status_code == 200, with_one.content[:500]
    grow(GROWTH)
    with assert_num_queries(queries):
        with_many = request()
    assert with_many.status_code == 200
    if rows is not None:
        # The second page shows more rows for the same number of queries (no N+1, and no data hidden).
        assert rows(with_many) > rows(with_one) >= 1, (rows(with_one), rows(with_many))


def api_results(response: HttpResponse) -> int:
    return len(response.json()["results"])  # type: ignore[attr-defined]


def api_lines(response: HttpResponse) -> int:
    return len(response.json()["lines"])  # type: ignore[attr-defined]


def distinct(pattern: str) -> Callable[[HttpResponse], int]:
    """Rows on an HTML page: the number of distinct matches (a name may appear twice in one row)."""
    compiled = re.compile(pattern)
    return lambda response: len(set(compiled.findall(response.content.decode())))


PRODUCT_NAMES = distinct(r"Budget product \d+")
ORDER_NUMBERS = distinct(r"SO-\d{6}")
CATEGORY_NAMES = distinct(r"Budget category \d+")


# --- Growing the data ---------------------------------------------------------------------------------------


def new_products(count: int, **fields: Any) -> list[Product]:
    """Products that each get their own new category unless one is given: a lazy category load would show."""
    return [
        ProductFactory.create(name=f"Budget product {product_number()}", stock_on_hand=100, **fields)
        for _ in range(count)
    ]


_counter = {"product": 0, "order": 0, "category": 0}


def product_number() -> int:
    _counter["product"] += 1
    return _counter["product"]


def new_categories(count: int) -> list[Category]:
    created = []
    for _ in range(count):
        _counter["category"] += 1
        number = _counter["category"]
        created.append(CategoryFactory.create(name=f"Budget category {number}", slug=f"budget-category-{number}"))
    return created


def default_centre() -> FulfilmentCentre:
    return FulfilmentCentreFactory.create(code="budget-centre", name="Budget Centre")


def new_orders(
    customer: User,
    count: int,
    *,
    lines: int = 2,
    centre: FulfilmentCentre | None = None,
    status: str = OrderStatus.PAID,
) -> list[Order]:
    """Orders with their lines, written directly: these tests measure reads, not order placement."""
    orders = []
    for _ in range(count):
        products = new_products(lines)
        line_rows = [(product, index + 1) for index, product in enumerate(products)]
        order = Order.objects.create(
            customer=customer,
            fulfilment_centre=centre or default_centre(),
            status=status,
            total=sum((product.price * quantity for product, quantity in line_rows), Decimal("0.00")),
            idempotency_key=f"budget-{Order.objects.count()}-{product_number()}",
            shipping_name="A. Buyer",
            shipping_line1="1 Main St",
            shipping_city="Springfield",
            shipping_postal_code="12345",
            shipping_country="DE",
        )
        order.number = f"SO-{order.pk:06d}"
        order.save(update_fields=["number"])
        add_lines(order, line_rows)
        orders.append(order)
    return orders


def add_lines(order: Order, line_rows: list[tuple[Product, int]]) -> None:
    OrderLine.objects.bulk_create(
        [
            OrderLine(
                order=order,
                product=product,
                sku=product.sku,
                name=product.name,
                unit_price=product.price,
                quantity=quantity,
                line_total=product.price * quantity,
            )
            for product, quantity in line_rows
        ]
    )
    total = OrderLine.objects.filter(order=order).aggregate(total=Sum("line_total"))["total"]
    Order.objects.filter(pk=order.pk).update(total=total)


def grow_order_lines(order: Order) -> Callable[[int], None]:
    """More lines on one order (up to ORDER_MAX_LINES): the detail page must not pay per line."""

    def grow(count: int) -> None:
        already = OrderLine.objects.filter(order=order).count()
        count = min(count, 50 - already)
        add_lines(order, [(product, 1) for product in new_products(count)])

    return grow


def grow_cart(user: User) -> Callable[[int], None]:
    cart, _ = Cart.objects.get_or_create(user=user)

    def grow(count: int) -> None:
        already = CartItem.objects.filter(cart=cart).count()
        count = min(count, 50 - already)
        CartItem.objects.bulk_create(
            [CartItem(cart=cart, product=product, quantity=1) for product in new_products(count)]
        )

    return grow
