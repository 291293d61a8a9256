"""Migration 0003 returns the stock that payment_failed orders held before the fix, exactly once.

The schema is taken back to orders 0002, rows are written as the old code left them, and the migration runs
forward again, against the real test database.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("orders", "0002_order_status_recent")
AFTER = ("orders", "0004_order_stock_released_when_closed")
# The historical models the rows are written with: the orders schema before 0003, with the apps it touches.
BEFORE_STATE = [
    BEFORE,
    ("idempotency", "0002_idempotency_key_checks"),
    ("shop", "0003_product_name_trgm_no_pending_list"),
    ("accounts", "0003_username_unique_case_insensitive"),  # the users table as it is now (left alone)
]
MIGRATION = importlib.import_module("orders.migrations.0003_order_stock_released_and_fingerprint")


@pytest.fixture
def executor() -> Iterator[MigrationExecutor]:
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    try:
        yield executor
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())  # the schema every other test expects


def _old_shop(apps: Any) -> dict[str, Any]:
    """What the shop looked like before the fix: a failed order still holding its 2 units."""
    User = apps.get_model("accounts", "User")
    Category = apps.get_model("shop", "Category")
    Product = apps.get_model("shop", "Product")
    Order = apps.get_model("orders", "Order")
    OrderLine = apps.get_model("orders", "OrderLine")
    IdempotencyKey = apps.get_model("idempotency", "IdempotencyKey")
    alice = User.objects.create(username="alice", password="!")
    category = Category.objects.create(name="Tea", slug="tea")
    # Received 10: 2 held by the failed order, 3 sold to the paid order; the cancelled order's 4 came back.
    tea = Product.objects.create(
        category=category, sku="TEA", name="Tea", slug="tea", price=Decimal("1.00"), stock_on_hand=5, stock_received=10
    )
    orders = {}
    for status, quantity in (("payment_failed", 2), ("paid", 3), ("cancelled", 4)):
        order = Order.objects.create(
            customer=alice,
            status=status,
            total=Decimal(quantity),
            idempotency_key=f"key-{status}",
            shipping_name="A",
            shipping_line1="1 Main St",
            shipping_city="Berlin",
            shipping_postal_code="10115",
            shipping_country="DE",
            cancelled_at=timezone.now() if status == "cancelled" else None,
        )
        OrderLine.objects.create(
            order=order,
            product=tea,
            sku="TEA",
            name="Tea",
            unit_price=Decimal("1.00"),
            quantity=quantity,
            line_total=Decimal(quantity),
        )
        orders[status] = order.pk
    IdempotencyKey.objects.create(
        user=alice,
        key="key-paid",
        fingerprint="f" * 64,
        status="completed",
        response_status=201,
        locked_at=timezone.now(),
    )
    return {"tea": tea.pk, **orders}


def test_failed_orders_get_their_stock_back_once_and_every_closed_order_is_marked(
    executor: MigrationExecutor,
) -> None:
    ids = _old_shop(executor.loader.project_state(BEFORE_STATE).apps)

    executor = MigrationExecutor(connection)
    executor.migrate([AFTER])
    apps = executor.loader.project_state([AFTER]).apps
    Order, Product = apps.get_model("orders", "Order"), apps.get_model("shop", "Product")

    assert Product.objects.get(pk=ids["tea"]).stock_on_hand == 7  # the failed order's 2 units are back
    released = dict(Order.objects.values_list("status", "stock_released_at"))
    assert released["payment_failed"] is not None
    assert released["cancelled"] == Order.objects.get(pk=ids["cancelled"]).cancelled_at
    assert released["paid"] is None
    assert Order.objects.get(pk=ids["paid"]).request_fingerprint == "f" * 64
    assert Order.objects.get(pk=ids["payment_failed"]).request_fingerprint == ""  # no key record left

    # Run again (a re-applied migration, a second deploy): nothing more comes back.
    with transaction.atomic():  # as the migration runs it
        MIGRATION.release_stock_of_closed_orders(apps, None)
    assert Product.objects.get(pk=ids["tea"]).stock_on_hand == 7
