"""N+1 detection is on for the whole suite, and it catches the classic loop.

django-zeal watches every lazy relation load and every `.get()`: the same one twice from the same line (in one
request, or in one test body) raises NPlusOneError. It is switched on by config/settings.py under test (app and
outermost middleware: one context per request) and by the autouse fixture in tests/conftest.py (one context per
test). These tests are the proof that the switch is on and that it fails what it should.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from zeal import NPlusOneError, zeal_ignore
from zeal.listeners import _nplusone_context

from accounts.models import User
from orders.models import Order
from orders.selectors import order_list_for_customer
from orders.serializers import OrderOutputSerializer
from tests.queries.budget import new_orders

pytestmark = pytest.mark.django_db


def test_detection_is_switched_on_for_every_test_and_every_request() -> None:
    assert settings.ZEAL_ENABLED
    assert settings.MIDDLEWARE[0] == "zeal.middleware.zeal_middleware"
    assert _nplusone_context.get().enabled  # the autouse fixture's context, around this very test


def test_the_naive_loop_fails(alice: User) -> None:
    new_orders(alice, 3)
    # The N+1: one query for the orders, then `order.lines.all()` runs one more query per order.
    with pytest.raises(NPlusOneError, match=r"orders\.Order\.lines"):
        for order in Order.objects.filter(customer=alice):
            [line.sku for line in order.lines.all()]


def test_the_same_loop_over_the_selector_passes_in_two_queries(alice: User, django_assert_num_queries: Any) -> None:
    new_orders(alice, 3)
    with django_assert_num_queries(2):  # the orders, then every line of every order in one IN (...) query
        skus = [line.sku for order in order_list_for_customer(customer=alice) for line in order.lines.all()]
    assert len(skus) == 6


def test_serializing_orders_without_the_selector_fails(alice: User) -> None:
    new_orders(alice, 3)
    # The same N+1 hidden one level down: a nested serializer reads `lines` for each order.
    with pytest.raises(NPlusOneError):
        OrderOutputSerializer(Order.objects.filter(customer=alice), many=True).data  # noqa: B018


def test_a_request_that_loads_lazily_fails(alice: User, client: Client, settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.queries.urls"
    new_orders(alice, 3)
    # The test client re-raises the view's exception: the request fails, so the test fails.
    with pytest.raises(NPlusOneError, match=r"orders\.Order\.lines"):
        client.get("/naive-orders/")


def test_one_lazy_load_is_not_an_n_plus_one(alice: User, client: Client, settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.queries.urls"
    new_orders(alice, 1)
    assert client.get("/naive-orders/").status_code == 200


def test_a_deliberate_repeat_can_be_allowed_explicitly(alice: User) -> None:
    new_orders(alice, 2)
    with zeal_ignore([{"model": "orders.Order", "field": "lines"}]):
        for order in Order.objects.filter(customer=alice):
            [line.sku for line in order.lines.all()]
