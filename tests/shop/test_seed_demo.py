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


def test_seed_demo_volume_after_real_orders_brings_the_mail_its_history_was_sent(alice):
    """Generated history placed after a real order (whose mail is in the outbox) carries its sent mail rows.

    Without them mail_sent_once reports every generated order as mail never written (the twin: delete them).
    """
    from mail.models import OutboxMessage, OutboxStatus
    from observability.invariants import check_all, check_mail_sent_once
    from orders.models import Order
    from orders.placement import order_place
    from orders.services import LineRequest
    from tests.orders.support import ADDRESS

    seed()
    tea = Product.objects.filter(is_active=True).order_by("id").first()
    assert tea is not None
    real = order_place(customer=alice, lines=[LineRequest(tea.pk, 1)], shipping_address=ADDRESS, idempotency_key="k")
    assert OutboxMessage.objects.filter(order=real.order).count() == 1  # the real order's confirmation
    seed(customers=3, orders=Order.objects.count() + 30)

    generated = Order.objects.exclude(pk=real.order.pk)
    sent = OutboxMessage.objects.filter(order__in=generated, status=OutboxStatus.SENT)
    shipped = generated.filter(status="fulfilled").count()
    assert sent.count() == 2 * generated.count() + shipped  # placed + paid for each, fulfilled for the shipped
    assert [result.name for result in check_all() if not result.ok] == []

    sent.delete()
    assert not check_mail_sent_once().ok
