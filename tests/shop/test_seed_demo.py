from __future__ import annotations

import pytest
from django.core.management import call_command
from zeal import zeal_ignore

from accounts.models import User
from orders.models import FulfilmentCentre
from shop.models import Category, Product

pytestmark = pytest.mark.django_db


def seed(**options: object) -> None:
    # The demo seeding loops over a fixed, small catalog with get_or_create on purpose (idempotency); not an N+1.
    with zeal_ignore():
        call_command("seed_demo", verbosity=0, **options)


def _snapshot() -> tuple[list[tuple[object, ...]], ...]:
    return (
        list(Category.objects.order_by("slug").values_list("slug", "name")),
        list(Product.objects.order_by("sku").values_list("sku", "price", "stock_on_hand", "stock_received")),
        list(User.objects.order_by("username").values_list("username", "password")),
        list(FulfilmentCentre.objects.order_by("code").values_list("code", "is_default")),
    )


def test_seed_demo_creates_a_shop_and_running_it_again_changes_nothing():
    seed()
    first = _snapshot()
    assert len(first[0]) >= 3
    assert len(first[1]) >= 10
    assert {"alice", "bob", "charlie", "admin"} <= {username for username, _ in first[2]}
    seed()
    assert _snapshot() == first


def test_seed_demo_volume_options_keep_stock_conserved():
    seed(products=60, customers=5, orders=40)
    assert Product.objects.count() >= 60
    from django.db.models import Sum

    from orders.models import OrderLine

    sold = OrderLine.objects.aggregate(total=Sum("quantity"))["total"] or 0
    totals = Product.objects.aggregate(received=Sum("stock_received"), on_hand=Sum("stock_on_hand"))
    assert totals["received"] == totals["on_hand"] + sold
    # Every generated (paid or shipped) order has its captured payment, so check_invariants stays clean.
    from orders.models import Order
    from payments.models import Payment

    assert Payment.objects.filter(status="captured").count() == Order.objects.count() >= 40
    from observability.invariants import check_all

    assert [result.name for result in check_all() if not result.ok] == []
