from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_product_list_is_anonymous_paginated_and_shaped(api_client, product_factory):
    product = product_factory(name="Sencha", stock_on_hand=42)
    response = api_client.get("/api/v1/products/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert body["results"][0] == {
        "id": product.pk,
        "sku": product.sku,
        "name": "Sencha",
        "slug": product.slug,
        "description": product.description,
        "price": "10.00",
        "currency": "EUR",
        "stock_available": 42,
        "category": {"slug": product.category.slug, "name": product.category.name},
    }
    assert response["X-Request-ID"]


def test_page_size_above_limit_is_400(api_client):
    response = api_client.get("/api/v1/products/?page_size=10000")
    assert response.status_code == 400
    assert response.json()["errors"]["page_size"]


def test_filters_by_category_and_text(api_client, product_factory):
    tea = product_factory(name="Green Tea", category__slug="tea")
    product_factory(name="Espresso", category__slug="coffee")
    assert [p["id"] for p in api_client.get("/api/v1/products/?category=tea").json()["results"]] == [tea.pk]
    assert [p["id"] for p in api_client.get("/api/v1/products/?q=green").json()["results"]] == [tea.pk]


def test_unknown_product_is_404_problem(api_client):
    response = api_client.get("/api/v1/products/999999/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_request_id_is_echoed(api_client):
    assert api_client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"


@pytest.mark.parametrize("size", ["", " 5", "+5", "\u0665", "0", "101", "5.0", "1e1", "-1"])
def test_page_size_is_digits_between_1_and_100_and_nothing_else(api_client, size):
    response = api_client.get("/api/v1/products/", {"page_size": size})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"]["page_size"]
