"""The order API against the contract: fields, status codes, ETags, idempotency replays."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from orders.models import Order, OrderLine
from shop.models import Product
from tests.conftest import bearer_client, order_payload
from tests.orders.support import stock_taken_behind_the_lock

pytestmark = pytest.mark.django_db


def test_place_order_returns_contract_fields_and_decrements_stock(alice, product_factory):
    product = product_factory(price=Decimal("12.50"), stock_on_hand=5)
    response = bearer_client(alice).post(
        "/api/v1/orders/", order_payload((product.pk, 2)), format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
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
    assert body["status"] == "pending_payment"
    assert body["total"] == "25.00"
    assert body["lines"] == [
        {
            "product_id": product.pk,
            "sku": product.sku,
            "name": product.name,
            "quantity": 2,
            "unit_price": "12.50",
            "line_total": "25.00",
        }
    ]
    assert response["ETag"] == '"1"'
    product.refresh_from_db()
    assert product.stock_on_hand == 3


def test_missing_idempotency_key_is_400_and_writes_nothing(alice, product_factory):
    product = product_factory(stock_on_hand=5)
    response = bearer_client(alice).post("/api/v1/orders/", order_payload((product.pk, 1)), format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "idempotency_key_missing"
    assert Order.objects.count() == 0


def test_replay_is_byte_identical_and_marked(alice, product_factory):
    product = product_factory(stock_on_hand=5)
    client = bearer_client(alice)
    first = client.post("/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="k")
    again = client.post("/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Order.objects.count() == 1
    product.refresh_from_db()
    assert product.stock_on_hand == 4


def test_same_key_different_payload_is_422(alice, product_factory):
    product = product_factory(stock_on_hand=5)
    client = bearer_client(alice)
    client.post("/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="k")
    response = client.post("/api/v1/orders/", order_payload((product.pk, 2)), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_keys_are_scoped_per_user(alice, bob, product_factory):
    product = product_factory(stock_on_hand=5)
    for user in (alice, bob):
        response = bearer_client(user).post(
            "/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="same"
        )
        assert response.status_code == 201
    assert Order.objects.count() == 2


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ([{"product_id": 999999, "quantity": 1}], "unknown_product"),
        ([{"product_id": "PRODUCT", "quantity": 0}], "invalid"),
        ([{"product_id": "PRODUCT", "quantity": -3}], "invalid"),
        ([], "invalid"),
    ],
)
def test_bad_lines_are_4xx_and_write_nothing(alice, product_factory, lines, code):
    product = product_factory(stock_on_hand=5)
    for line in lines:
        if line["product_id"] == "PRODUCT":
            line["product_id"] = product.pk
    payload = order_payload()
    payload["lines"] = lines
    response = bearer_client(alice).post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="bad")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert Order.objects.count() == OrderLine.objects.count() == 0
    assert Product.objects.get(pk=product.pk).stock_on_hand == 5


def test_malformed_json_is_400_problem(alice):
    response = bearer_client(alice).generic(
        "POST", "/api/v1/orders/", "{not json", content_type="application/json", HTTP_IDEMPOTENCY_KEY="m"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_ten_megabyte_body_is_413_and_writes_nothing(alice):
    body = json.dumps({"note": "x" * (10 * 1024 * 1024)})
    response = bearer_client(alice).generic(
        "POST", "/api/v1/orders/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="big"
    )
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert Order.objects.count() == 0


def test_insufficient_stock_is_409_and_releases_key(alice, product_factory):
    product = product_factory(stock_on_hand=1)
    client = bearer_client(alice)
    refused = client.post("/api/v1/orders/", order_payload((product.pk, 2)), format="json", HTTP_IDEMPOTENCY_KEY="s")
    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_stock"
    assert refused.json()["items"] == [{"product_id": product.pk, "requested": 2, "available": 1}]
    Product.objects.filter(pk=product.pk).update(stock_on_hand=5, stock_received=5)
    retried = client.post("/api/v1/orders/", order_payload((product.pk, 2)), format="json", HTTP_IDEMPOTENCY_KEY="s")
    assert retried.status_code == 201


def test_stock_the_check_constraint_refuses_is_409_not_500(alice, product_factory):
    # Overselling past the lock: only the database's CHECK refuses; the client still gets a clean 409.
    product = product_factory(stock_on_hand=5)
    with stock_taken_behind_the_lock():
        refused = bearer_client(alice).post(
            "/api/v1/orders/", order_payload((product.pk, 2)), format="json", HTTP_IDEMPOTENCY_KEY="c"
        )
    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_stock"
    assert Order.objects.count() == 0
    assert Product.objects.get(pk=product.pk).stock_on_hand == 5


def test_patch_requires_if_match_and_detects_stale_version(alice, product_factory):
    product = product_factory(stock_on_hand=5)
    client = bearer_client(alice)
    order = client.post("/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="e")
    url = f"/api/v1/orders/{order.json()['id']}/"
    assert client.patch(url, {"note": "x"}, format="json").status_code == 428
    first = client.patch(url, {"note": "first"}, format="json", HTTP_IF_MATCH='"1"')
    assert first.status_code == 200
    assert first["ETag"] == '"2"'
    stale = client.patch(url, {"note": "second"}, format="json", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412
    assert stale.json()["code"] == "precondition_failed"
    assert client.get(url).json()["note"] == "first"


def test_injected_fields_change_nothing(alice, product_factory):
    product = product_factory(stock_on_hand=5, price=Decimal("10.00"))
    client = bearer_client(alice)
    payload = order_payload((product.pk, 1), status="paid", total="0.01", customer=999, version=42)
    created = client.post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="inj")
    assert created.status_code == 201
    assert created.json()["status"] == "pending_payment"
    assert created.json()["total"] == "10.00"
    url = f"/api/v1/orders/{created.json()['id']}/"
    patched = client.patch(
        url,
        {"status": "paid", "total": "0.01", "version": 99, "note": "ok"},
        format="json",
        HTTP_IF_MATCH='"1"',
    )
    assert patched.status_code == 200
    assert patched.json()["status"] == "pending_payment"
    assert patched.json()["total"] == "10.00"
    assert patched.json()["version"] == 2


def test_cancel_returns_stock_once_and_repeats_are_200(alice, product_factory):
    product = product_factory(stock_on_hand=5)
    client = bearer_client(alice)
    order = client.post("/api/v1/orders/", order_payload((product.pk, 2)), format="json", HTTP_IDEMPOTENCY_KEY="c")
    url = f"/api/v1/orders/{order.json()['id']}/cancel/"
    for _ in range(2):
        response = client.post(url)
        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"
    product.refresh_from_db()
    assert product.stock_on_hand == 5


def test_another_customers_order_is_404_everywhere(alice, bob, product_factory):
    product = product_factory(stock_on_hand=5)
    order = (
        bearer_client(alice)
        .post("/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="a")
        .json()
    )
    intruder = bearer_client(bob)
    url = f"/api/v1/orders/{order['id']}/"
    assert intruder.get(url).status_code == 404
    assert intruder.patch(url, {"note": "hacked"}, format="json", HTTP_IF_MATCH='"1"').status_code == 404
    assert intruder.post(f"{url}cancel/").status_code == 404
    reread = Order.objects.get(pk=order["id"])
    assert (reread.note, reread.status, reread.version) == ("", "pending_payment", 1)
