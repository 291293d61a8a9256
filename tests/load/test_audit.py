"""The load audit can fail: each check is shown passing on honest data and failing on a planted fault.

Without these, a green load run could mean "nothing was wrong" or "the audit looks at nothing". Data is
committed (transactional_db) because the audit reads through its own connection, as it does after a real run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection

from accounts.models import User
from loadtests import audit
from orders.models import Order
from orders.placement import order_place
from orders.services import LineRequest, ShippingAddress
from payments.models import Payment
from payments.services import payment_settle_declined
from shop.models import Product
from tests.concurrency import constraint_switched_off
from tests.factories import ProductFactory, UserFactory

ADDRESS = ShippingAddress(name="A. Buyer", line1="1 Main St", city="Berlin", postal_code="10115", country="DE")


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def conn(transactional_db: None) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url(), autocommit=True, prepare_threshold=None) as audit_connection:
        yield audit_connection


def accepted(username: str, key: str, order_id: int) -> dict[str, Any]:
    return {"kind": "order_accepted", "username": username, "key": key, "order_id": order_id}


def place(user: User, product: Product, key: str, quantity: int = 1) -> int:
    placement = order_place(
        customer=user,
        lines=[LineRequest(product_id=product.pk, quantity=quantity)],
        shipping_address=ADDRESS,
        idempotency_key=key,
    )
    return placement.order.pk


def test_ledger_checks_pass_on_one_order_per_key_and_404s() -> None:
    entries = [
        accepted("alice", "k1", 10),
        accepted("alice", "k1", 10),  # a replay: same key, same order
        {"kind": "curious", "username": "bob", "method": "GET", "path": "/api/v1/orders/10/", "status": 404},
    ]
    results = audit.check_ledger_self_consistent(entries)
    assert all(result["ok"] for result in results.values()), results


def test_ledger_checks_fail_on_two_orders_for_one_key_and_a_leak() -> None:
    entries = [
        accepted("alice", "k1", 10),
        accepted("alice", "k1", 11),  # double submit that created a second order
        {"kind": "curious", "username": "bob", "method": "GET", "path": "/api/v1/orders/10/", "status": 200},
    ]
    results = audit.check_ledger_self_consistent(entries)
    assert not results["client_one_order_per_key"]["ok"]
    assert not results["curious_never_saw_others_orders"]["ok"]
    assert "bob GET /api/v1/orders/10/ -> 200" in results["curious_never_saw_others_orders"]["detail"]


def test_accepted_orders_check_passes_for_real_orders(conn: psycopg.Connection[Any]) -> None:
    alice = UserFactory.create(username="alice")
    order_id = place(alice, ProductFactory.create(), "key-1")
    result = audit.check_accepted_orders_exist(conn, [accepted("alice", "key-1", order_id)])
    assert result["accepted_orders_exist_once"]["ok"], result


def test_accepted_orders_check_fails_for_a_lost_order_and_a_wrong_owner(conn: psycopg.Connection[Any]) -> None:
    alice = UserFactory.create(username="alice")
    UserFactory.create(username="bob")
    order_id = place(alice, ProductFactory.create(), "key-1")
    entries = [accepted("alice", "key-1", order_id + 1000), accepted("bob", "key-1", order_id)]
    detail = audit.check_accepted_orders_exist(conn, entries)["accepted_orders_exist_once"]
    assert not detail["ok"]
    assert "1 accepted orders missing" in detail["detail"]
    assert "1 orders with another owner or key" in detail["detail"]


def test_oversell_and_conservation_checks_catch_units_sold_twice(conn: psycopg.Connection[Any]) -> None:
    alice = UserFactory.create(username="alice")
    product = ProductFactory.create(stock_on_hand=2)
    place(alice, product, "key-1", quantity=2)
    fixture = {"rush_product_ids": [product.pk]}
    assert audit.check_no_oversell(conn, fixture)["no_product_oversold"]["ok"]
    assert all(result["ok"] for result in audit.check_database_invariants(database_url()).values())

    # The race the services prevent, planted by hand: a second order for the same two units, no stock taken.
    place(alice, ProductFactory.create(), "key-2")
    conn.execute(
        "UPDATE orders_orderline SET product_id = %s, line_total = unit_price * quantity "
        "WHERE order_id = (SELECT id FROM orders_order WHERE idempotency_key = 'key-2')",
        [product.pk],
    )
    oversold = audit.check_no_oversell(conn, fixture)["no_product_oversold"]
    assert not oversold["ok"]
    assert f"{product.sku}: sold 3 of 2" in oversold["detail"]
    database = audit.check_database_invariants(database_url())
    assert not database["db_stock_conservation"]["ok"], database


def test_orphan_check_finds_a_claim_left_in_flight(conn: psycopg.Connection[Any]) -> None:
    since = time.time() - 5
    alice = UserFactory.create(username="alice")
    assert audit.check_no_orphans(conn, since)["no_orphan_rows"]["ok"]
    conn.execute(
        "INSERT INTO idempotency_idempotencykey (user_id, key, fingerprint, status, response_body, "
        "response_headers, locked_at, created_at) VALUES (%s, 'died-mid-request', 'f', 'in_flight', '', '{}', "
        "now(), now())",
        [alice.pk],
    )
    orphans = audit.check_no_orphans(conn, since)["no_orphan_rows"]
    assert not orphans["ok"]
    assert "idempotency claims left in flight" in orphans["detail"]


def _fail_payment(order_id: int) -> None:
    payment_settle_declined(payment=Payment.objects.get(order_id=order_id))


def test_units_of_a_failed_payment_sold_again_are_not_counted_twice(conn: psycopg.Connection[Any]) -> None:
    alice, bob = UserFactory.create(username="alice"), UserFactory.create(username="bob")
    product = ProductFactory.create(stock_on_hand=2)
    _fail_payment(place(alice, product, "declined", quantity=2))  # the two units go back on the shelf...
    place(bob, product, "bought-them", quantity=2)  # ... and are sold again

    oversold = audit.check_no_oversell(conn, {"rush_product_ids": [product.pk]})["no_product_oversold"]
    assert oversold["ok"], oversold
    assert f"{product.sku} sold 2/2 (1 orders)" in oversold["detail"]
    assert all(result["ok"] for result in audit.check_database_invariants(database_url()).values())


def test_a_failed_payment_still_holding_its_units_fails_the_audit(conn: psycopg.Connection[Any]) -> None:
    alice = UserFactory.create(username="alice")
    product = ProductFactory.create(stock_on_hand=5)
    order_id = place(alice, product, "declined", quantity=2)
    assert audit.check_no_oversell(conn, {})["no_product_oversold"]["ok"]

    def back_to_a_consistent_state() -> None:
        Order.objects.filter(pk=order_id).update(status="pending_payment")

    # The defect, planted: payment_failed, and its units never returned (the database would refuse it).
    with constraint_switched_off(Order, "order_stock_released_when_closed", clean_up=back_to_a_consistent_state):
        conn.execute("UPDATE orders_order SET status = 'payment_failed' WHERE id = %s", [order_id])
        result = audit.check_no_oversell(conn, {})["no_product_oversold"]
        database = audit.check_database_invariants(database_url())

    assert not result["ok"]
    assert f"{product.sku}: received 5 != on hand 3 + held by live orders 0" in result["detail"]
    assert f"order {order_id} is payment_failed but holds its stock" in result["detail"]
    assert not database["db_stock_conservation"]["ok"]
    assert not database["db_closed_orders_hold_no_stock"]["ok"]
