"""Small helpers shared by the order service and race tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from accounts.models import User
from orders.models import Order
from orders.placement import order_place
from orders.services import LineRequest, ShippingAddress
from shop.models import Product
from tests.conftest import DEFAULT_ADDRESS

ADDRESS = ShippingAddress(**DEFAULT_ADDRESS)


def place(customer: User, *lines: tuple[Product, int], key: str = "k") -> Order:
    """Place an order through the real service and return it."""
    return order_place(
        customer=customer,
        lines=[LineRequest(product_id=product.pk, quantity=quantity) for product, quantity in lines],
        shipping_address=ADDRESS,
        idempotency_key=key,
    ).order


def stock_of(product: Product) -> int:
    return Product.objects.values_list("stock_on_hand", flat=True).get(pk=product.pk)


@contextmanager
def stock_taken_behind_the_lock() -> Iterator[None]:
    """A writer that skipped the product row lock: as each order line is written, its product's shelf empties.

    The placement read the stock under its lock and found enough, so only the database's
    CHECK (stock_on_hand >= 0) is left to refuse the decrement: the path every placement must turn into a
    409 insufficient_stock, never a 500. A trigger in the test's own transaction, dropped afterwards.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION test_empty_the_shelf() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE shop_product SET stock_on_hand = 0 WHERE id = NEW.product_id;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_empty_the_shelf AFTER INSERT ON orders_orderline
                FOR EACH ROW EXECUTE FUNCTION test_empty_the_shelf();
            """
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER IF EXISTS test_empty_the_shelf ON orders_orderline; "
                "DROP FUNCTION IF EXISTS test_empty_the_shelf();"
            )
