"""Acceptance: sign in as one customer, put another customer's order id into every order URL and API call
(GET, PATCH, cancel, edit, status...): 404 every time, and the other order is unchanged.

The order routes are read from the policy table and the URL resolver, so an order route added later is
covered here without editing this file. Each refusal has a positive control: the owner sends the very same
request and succeeds, which proves the 404 comes from the ownership check, not from a malformed request.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from orders.models import Order, OrderStatus
from tests.authorization.policy import OWNER, POLICY, Route
from tests.authorization.routes import RouteInfo, project_routes
from tests.authorization.scene import Scene, build_scene
from tests.authorization.snapshot import owner_rows

pytestmark = pytest.mark.django_db

ORDER_OBJECTS = {"order", "paid_order"}


def customer_order_routes() -> list[tuple[RouteInfo, Route, str]]:
    """(route, row, method) for every customer-facing route that takes an order id."""
    found: list[tuple[RouteInfo, Route, str]] = []
    for route in project_routes():
        row = POLICY.get(route.key)
        if row is None or row.obj not in ORDER_OBJECTS or route.key.startswith(("staff:", "api:staff")):
            continue
        found.extend((route, row, method) for method in row.access)
    return found


ROUTES = customer_order_routes()


def _request(client: Client, user: User, route: RouteInfo, row: Route, method: str, scene: Scene) -> Any:
    order = scene.obj(str(row.obj))
    url = reverse(route.key, kwargs={name: order.pk for name in route.kwargs})
    headers = dict(row.headers[method](scene)) if method in row.headers else {}
    body = row.body[method](scene) if method in row.body else {}
    if route.route.startswith("api/"):
        headers["Authorization"] = f"Bearer {RefreshToken.for_user(user).access_token}"
        if method == "GET":
            return client.get(url, headers=headers)
        return client.generic(method, url, json.dumps(body), content_type="application/json", headers=headers)
    client.force_login(user)
    if method == "GET":
        return client.get(url, headers=headers)
    return client.generic(
        method, url, urlencode(body), content_type="application/x-www-form-urlencoded", headers=headers
    )


def test_the_order_routes_are_all_here() -> None:
    keys = {route.key for route, _, _ in ROUTES}
    assert {"api:order", "api:order-cancel", "orders:detail", "orders:edit", "orders:cancel"} <= keys
    assert {method for route, _, method in ROUTES if route.key == "api:order"} == {"GET", "PATCH"}


@pytest.mark.parametrize(
    ("route", "row", "method"), ROUTES, ids=[f"{route.key} {method}" for route, _, method in ROUTES]
)
def test_another_customers_order_id_is_404_and_the_order_is_unchanged(
    route: RouteInfo, row: Route, method: str
) -> None:
    scene = build_scene()
    alice, bob = scene.owner, scene.other_customer
    before = owner_rows(alice)

    # bob takes alice's order id (the URL a shared link or a guess would give him).
    response = _request(Client(), bob, route, row, method, scene)

    assert response.status_code == 404, f"{route.key} {method}: {response.status_code}"
    assert str(scene.order.number) not in response.content.decode()
    assert owner_rows(alice) == before, f"{route.key} {method} by bob changed alice's order"

    # Positive control: the same request from alice is allowed (so the 404 above is the ownership check).
    control = _request(Client(), alice, route, row, method, scene)
    assert control.status_code == row.access[method][OWNER], f"control {route.key} {method}: {control.status_code}"


def test_list_endpoints_show_only_the_callers_orders() -> None:
    scene = build_scene()
    bob = scene.other_customer
    api = Client()
    api_body = api.get(
        "/api/v1/orders/", headers={"Authorization": f"Bearer {RefreshToken.for_user(bob).access_token}"}
    ).json()
    assert [order["id"] for order in api_body["results"]] == [scene.bob_order.pk]
    web = Client()
    web.force_login(bob)
    page = web.get(reverse("orders:list")).content.decode()
    assert str(scene.bob_order.number) in page
    assert str(scene.order.number) not in page and str(scene.paid_order.number) not in page


def test_a_paid_order_of_someone_else_cannot_be_cancelled_through_either_door() -> None:
    scene = build_scene()
    bob = scene.other_customer
    paid = scene.paid_order
    api = Client()
    auth = {"Authorization": f"Bearer {RefreshToken.for_user(bob).access_token}"}
    assert api.post(f"/api/v1/orders/{paid.pk}/cancel/", headers=auth).status_code == 404
    web = Client()
    web.force_login(bob)
    assert web.post(reverse("orders:cancel", kwargs={"pk": paid.pk})).status_code == 404
    paid.refresh_from_db()
    assert paid.status == OrderStatus.PAID
    assert Order.objects.filter(customer=scene.owner, status=OrderStatus.CANCELLED).count() == 0
