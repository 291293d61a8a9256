"""Field-level protection: writable fields are allow-listed (mass assignment), and responses carry neither
another user's data nor internal fields."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from orders.models import Order, OrderStatus
from shop.models import Product
from tests.authorization.scene import Scene, build_scene

pytestmark = pytest.mark.django_db

# What an attacker would try to set. None of it may stick.
INJECTED: dict[str, Any] = {
    "status": "paid",
    "total": "0.01",
    "customer": 1,
    "customer_id": 1,
    "version": 99,
    "number": "SO-999999",
    "fulfilment_centre": 1,
    "idempotency_key": "stolen",
    "currency": "XXX",
    "paid_at": "2020-01-01T00:00:00Z",
}
ORDER_FIELDS = {
    "id",
    "number",
    "status",
    "lines",
    "total",
    "currency",
    "shipping_address",
    "note",
    "version",
    "created_at",
    "updated_at",
}


def api(user: User) -> Client:
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {RefreshToken.for_user(user).access_token}"
    return client


def order_row(order_id: int) -> list[Any]:
    return list(Order.objects.filter(pk=order_id).values())


@pytest.fixture
def scene() -> Scene:
    return build_scene()


def test_injected_fields_in_an_order_post_change_nothing(scene: Scene) -> None:
    alice, bob = scene.owner, scene.other_customer
    payload = {
        "lines": [{"product_id": scene.product.pk, "quantity": 2, "unit_price": "0.01", "line_total": "0.02"}],
        "shipping_address": {
            "name": "A",
            "line1": "1 St",
            "line2": "",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        "note": "",
        **INJECTED,
        "customer": bob.pk,
        "customer_id": bob.pk,
        "fulfilment_centre": scene.rotterdam.pk,
    }
    response = api(alice).post(
        "/api/v1/orders/", payload, content_type="application/json", headers={"Idempotency-Key": "mass-1"}
    )
    assert response.status_code == 201, response.content
    created = Order.objects.select_related("customer", "fulfilment_centre").get(pk=response.json()["id"])
    assert created.customer == alice
    assert created.status == OrderStatus.PENDING_PAYMENT
    assert created.total == Decimal("25.00")  # 2 x 12.50 from the catalog, not the client
    assert created.version == 1
    assert created.number != "SO-999999" and created.currency == "EUR" and created.paid_at is None
    assert created.idempotency_key == "mass-1"
    assert created.fulfilment_centre == scene.berlin  # routed by the shop from the address
    assert list(created.lines.values_list("unit_price", flat=True)) == [Decimal("12.50")]
    assert set(response.json()) == ORDER_FIELDS


def test_injected_fields_in_an_order_patch_change_nothing_but_the_allowed_field(scene: Scene) -> None:
    order = scene.order
    response = api(scene.owner).patch(
        f"/api/v1/orders/{order.pk}/",
        {**INJECTED, "customer": scene.other_customer.pk, "note": "leave at the door"},
        content_type="application/json",
        headers={"If-Match": order.etag},
    )
    assert response.status_code == 200, response.content
    order.refresh_from_db()
    assert order.note == "leave at the door"
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert order.total == Decimal("12.50")
    assert order.customer_id == scene.owner.pk
    assert order.version == 2  # one edit, one bump: not the injected 99
    assert order.number != "SO-999999" and order.fulfilment_centre_id == scene.berlin.pk


def test_a_patch_with_only_forbidden_fields_is_refused_and_changes_nothing(scene: Scene) -> None:
    before = order_row(scene.order.pk)
    response = api(scene.owner).patch(
        f"/api/v1/orders/{scene.order.pk}/",
        INJECTED,
        content_type="application/json",
        headers={"If-Match": scene.order.etag},
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert order_row(scene.order.pk) == before  # not even the version moved


def test_injected_fields_in_the_web_order_edit_form_change_nothing(scene: Scene) -> None:
    from orders.forms import order_details, sign_original

    order = scene.order
    client = Client()
    client.force_login(scene.owner)
    form = {**order_details(order), "note": "web edit", "version": order.version, "original": sign_original(order)}
    response = client.post(reverse("orders:edit", kwargs={"pk": order.pk}), {**INJECTED, **form, "total": "0.01"})
    assert response.status_code == 303
    order.refresh_from_db()
    assert (order.note, order.status, order.total, order.version) == (
        "web edit",
        OrderStatus.PENDING_PAYMENT,
        Decimal("12.50"),
        2,
    )


def test_injected_fields_in_a_staff_product_patch_change_nothing(scene: Scene) -> None:
    product = scene.product
    response = api(scene.staff_with_grant).patch(
        f"/api/v1/staff/products/{product.pk}/",
        {
            "name": "Sencha",
            "stock_on_hand": 100000,
            "stock_received": 100000,
            "version": 42,
            "sku": "STOLEN",
            "category": scene.coffee.pk,
            "id": 999,
        },
        content_type="application/json",
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200, response.content
    fresh = Product.objects.get(pk=product.pk)
    assert (fresh.stock_on_hand, fresh.stock_received, fresh.sku, fresh.category_id, fresh.version) == (
        product.stock_on_hand,
        product.stock_received,
        product.sku,
        scene.tea.pk,
        2,
    )


def test_customer_responses_carry_no_internal_fields(scene: Scene) -> None:
    client = api(scene.owner)
    detail = client.get(f"/api/v1/orders/{scene.order.pk}/").json()
    listed = client.get("/api/v1/orders/").json()["results"]
    for body in [detail, *listed]:
        assert set(body) == ORDER_FIELDS
        for internal in ("customer", "customer_id", "idempotency_key", "fulfilment_centre", "payment"):
            assert internal not in body
    product = Client().get(f"/api/v1/products/{scene.product.pk}/").json()
    assert "stock_received" not in product and "version" not in product and "is_active" not in product


def test_the_order_page_shows_no_internal_fields(scene: Scene) -> None:
    client = Client()
    client.force_login(scene.owner)
    page = client.get(reverse("orders:detail", kwargs={"pk": scene.order.pk})).content.decode()
    assert scene.order.idempotency_key not in page
