"""Resource caps: body size, page size, lines per order and quantity per line are refused with a clear 4xx."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import User
from orders.models import Order
from tests.conftest import bearer_client, order_payload
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def _post_order(client: APIClient, payload: Any) -> Any:
    return client.post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="caps")


def test_a_body_over_the_limit_is_refused_unread(alice: User) -> None:
    oversized = {"note": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}
    response = _post_order(bearer_client(alice), oversized)
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert not Order.objects.exists()


def test_too_many_lines_and_too_large_a_quantity_are_field_errors(alice: User) -> None:
    products = ProductFactory.create_batch(settings.ORDER_MAX_LINES + 1)
    client = bearer_client(alice)
    too_many = _post_order(client, order_payload(*[(product.pk, 1) for product in products]))
    too_much = _post_order(client, order_payload((products[0].pk, settings.ORDER_MAX_QUANTITY_PER_LINE + 1)))
    assert (too_many.status_code, too_much.status_code) == (400, 400)
    assert any(field.startswith("lines") for field in too_many.json()["errors"])
    assert any("quantity" in field for field in too_much.json()["errors"])
    assert not Order.objects.exists()


def test_page_size_is_capped() -> None:
    response = APIClient().get(f"/api/v1/products/?page_size={settings.API_MAX_PAGE_SIZE + 1}")
    assert response.status_code == 400
    assert "page_size" in response.json()["errors"]
