"""check_invariants passes on data the shop's own services wrote, and fails, naming the invariant, on each kind
of corruption. Corruption is done with raw SQL, dropping the constraint that would refuse it where needed
(inside the test's transaction, so the schema is restored when the test ends).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from zeal import zeal_ignore

from accounts.models import User
from observability.invariants import check_all
from orders.models import Order
from orders.placement import order_place
from orders.services import LineRequest, ShippingAddress, order_cancel
from payments.models import Payment
from payments.services import payment_settle_charge, payment_settle_declined
from shop.models import Product
from tests.factories import ProductFactory

ADDRESS = ShippingAddress(name="A. Buyer", line1="1 Main St", city="Springfield", postal_code="12345", country="DE")


@pytest.fixture
def shop_history(alice: User) -> dict[str, Order]:
    """A healthy history written by the real services: one order pending, one paid, one cancelled, one whose
    payment failed (its units are back on the shelf)."""
    tea, mug = ProductFactory.create(stock_on_hand=20), ProductFactory.create(stock_on_hand=5)

    def place(key: str, *lines: tuple[Product, int]) -> Order:
        requests = [LineRequest(product_id=product.pk, quantity=quantity) for product, quantity in lines]
        return order_place(customer=alice, lines=requests, shipping_address=ADDRESS, idempotency_key=key).order

    pending = place("key-pending", (tea, 2), (mug, 1))
    paid = place("key-paid", (tea, 3))
    payment_settle_charge(payment=Payment.objects.get(order=paid), charge_id="ch_test_1")
    cancelled = order_cancel(order=place("key-cancelled", (mug, 2)))
    failed = place("key-failed", (tea, 4), (mug, 1))
    payment_settle_declined(payment=Payment.objects.get(order=failed))
    return {"pending": pending, "paid": paid, "cancelled": cancelled, "failed": failed}


def run_command(*args: str) -> tuple[int, str]:
    output = StringIO()
    try:
        call_command("check_invariants", *args, "--no-publish", stdout=output)
    except SystemExit as exit:
        return int(exit.code or 0), output.getvalue()
    return 0, output.getvalue()


def sql(statement: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def drop_constraint(table: str, name: str) -> None:
    # Foreign keys are DEFERRABLE INITIALLY DEFERRED: their pending checks must run before the table can change.
    sql("SET CONSTRAINTS ALL IMMEDIATE")
    sql(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')


def drop_foreign_key(table: str, column: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.conname FROM pg_constraint c
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
               WHERE c.contype = 'f' AND c.conrelid = %s::regclass AND a.attname = %s""",
            [table, column],
        )
        [(name,)] = cursor.fetchall()
    drop_constraint(table, name)


def test_healthy_history_passes_with_a_clean_table(shop_history: dict[str, Order]) -> None:
    code, output = run_command()

    assert code == 0
    assert "all invariants hold" in output
    assert "VIOLATED" not in output
    for name in ("stock_conservation", "payments_match_orders", "no_stale_pending_payment"):
        assert name in output


def test_json_output_is_one_document_the_load_suite_can_read(shop_history: dict[str, Order], tmp_path: Path) -> None:
    output_file = tmp_path / "invariants.json"
    code, output = run_command("--json", "--output", str(output_file))

    document = json.loads(output.strip().splitlines()[-1])
    assert code == 0
    assert document == json.loads(output_file.read_text())
    assert document["ok"] is True
    assert set(document["invariants"]) == {
        "stock_conservation",
        "no_negative_stock",
        "one_order_per_idempotency_key",
        "orders_have_lines",
        "lines_have_orders",
        "order_totals_match_lines",
        "no_stale_pending_payment",
        "payments_match_orders",
        "closed_orders_hold_no_stock",
        "mail_sent_once",
    }
    assert all(
        result == {**result, "ok": True, "count": 0, "detail": "ok"} for result in document["invariants"].values()
    )


# --- One corruption per invariant ---------------------------------------------------------------------------


def lose_a_unit(history: dict[str, Order]) -> None:
    # A unit vanished: on hand went down without any order holding it.
    sql(
        "UPDATE shop_product SET stock_on_hand = stock_on_hand - 1 WHERE stock_on_hand > 0 AND id = "
        "(SELECT min(product_id) FROM orders_orderline)"
    )


def negative_stock(history: dict[str, Order]) -> None:
    drop_constraint("shop_product", "product_stock_on_hand_not_negative")
    sql("UPDATE shop_product SET stock_on_hand = -3 WHERE id = (SELECT min(id) FROM shop_product)")


def second_order_for_one_key(history: dict[str, Order]) -> None:
    drop_constraint("orders_order", "order_one_per_idempotency_key")
    sql(
        """INSERT INTO orders_order (number, customer_id, status, version, currency, total, idempotency_key,
               shipping_name, shipping_line1, shipping_line2, shipping_city, shipping_postal_code, shipping_country,
               note, created_at, updated_at)
           SELECT NULL, customer_id, status, 1, currency, total, idempotency_key, shipping_name, shipping_line1,
               shipping_line2, shipping_city, shipping_postal_code, shipping_country, note, now(), now()
           FROM orders_order WHERE id = %s""",
        [history["paid"].pk],
    )


def order_without_lines(history: dict[str, Order]) -> None:
    sql("DELETE FROM orders_orderline WHERE order_id = %s", [history["pending"].pk])


def line_without_order(history: dict[str, Order]) -> None:
    drop_foreign_key("orders_orderline", "order_id")
    sql("DELETE FROM payments_payment WHERE order_id = %s", [history["cancelled"].pk])
    sql("DELETE FROM mail_outboxmessage WHERE order_id = %s", [history["cancelled"].pk])
    sql("DELETE FROM orders_order WHERE id = %s", [history["cancelled"].pk])


def paid_without_its_receipt(history: dict[str, Order]) -> None:
    # A state change that skipped its mail: the order is paid, and nobody was promised the receipt.
    sql("DELETE FROM mail_outboxmessage WHERE order_id = %s AND event = 'order_paid'", [history["paid"].pk])


def total_not_sum_of_lines(history: dict[str, Order]) -> None:
    sql("UPDATE orders_order SET total = total + 1 WHERE id = %s", [history["pending"].pk])
    sql("UPDATE payments_payment SET amount = amount + 1 WHERE order_id = %s", [history["pending"].pk])


def pending_for_days(history: dict[str, Order]) -> None:
    sql("UPDATE orders_order SET created_at = now() - interval '3 days' WHERE id = %s", [history["pending"].pk])


def paid_without_captured_payment(history: dict[str, Order]) -> None:
    sql("UPDATE orders_order SET status = 'paid' WHERE id = %s", [history["pending"].pk])


def failed_payment_keeps_its_units(history: dict[str, Order]) -> None:
    # What the shop did before: payment_failed, and the units never went back on the shelf.
    drop_constraint("orders_order", "order_stock_released_when_closed")
    failed = history["failed"].pk
    sql("UPDATE orders_order SET stock_released_at = NULL WHERE id = %s", [failed])
    sql(
        """UPDATE shop_product p SET stock_on_hand = p.stock_on_hand - l.quantity
           FROM orders_orderline l WHERE l.product_id = p.id AND l.order_id = %s""",
        [failed],
    )


@pytest.mark.parametrize(
    ("corrupt", "invariant"),
    [
        (lose_a_unit, "stock_conservation"),
        (negative_stock, "no_negative_stock"),
        (second_order_for_one_key, "one_order_per_idempotency_key"),
        (order_without_lines, "orders_have_lines"),
        (line_without_order, "lines_have_orders"),
        (total_not_sum_of_lines, "order_totals_match_lines"),
        (pending_for_days, "no_stale_pending_payment"),
        (paid_without_captured_payment, "payments_match_orders"),
        (failed_payment_keeps_its_units, "closed_orders_hold_no_stock"),
        (failed_payment_keeps_its_units, "stock_conservation"),
        (paid_without_its_receipt, "mail_sent_once"),
    ],
)
def test_each_kind_of_corruption_fails_naming_the_invariant(
    shop_history: dict[str, Order], corrupt: Callable[[dict[str, Order]], None], invariant: str
) -> None:
    corrupt(shop_history)

    code, output = run_command()

    assert code == 1
    assert "INVARIANTS VIOLATED" in output
    [row] = [line for line in output.splitlines() if line.startswith(invariant + " ")]
    assert "VIOLATED" in row
    # The audit points at the broken rows, not just at the rule.
    failing = {result.name: result for result in check_all() if not result.ok}
    assert invariant in failing
    assert failing[invariant].violations


def test_a_cancelled_paid_order_may_stay_captured_until_its_refund_runs(shop_history: dict[str, Order]) -> None:
    """Refund owed: cancelling a paid order enqueues the refund after commit; the gap is not a violation..."""
    paid = shop_history["paid"]
    with zeal_ignore():  # the fixture already cancelled an order: a second call is not an N+1
        order_cancel(order=paid)
    assert Payment.objects.get(order=paid).status == "captured"
    assert run_command()[0] == 0

    # ... but a refund that never happened is, once the grace period is over.
    sql("UPDATE orders_order SET cancelled_at = now() - interval '2 hours' WHERE id = %s", [paid.pk])
    code, output = run_command()
    assert code == 1
    assert f"order {paid.pk} is cancelled but its payment is captured" in output
