"""The catalog cache (shop/catalog_cache.py): concurrent identical reads are computed once; the stock it shows
is availability, and ordering never trusts it; errors are not cached.

Real threads, each with its own database connection, against the real PostgreSQL. What the database was asked
is counted by wrapping the real selector (it still runs its query), not by replacing it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from shop import apis
from shop.catalog_cache import catalog_cache_clear
from shop.models import Product
from tests.concurrency import run_concurrently
from tests.conftest import order_payload
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)

READERS = 8


@pytest.fixture
def catalog_cache(settings: Any) -> Iterator[None]:
    settings.CATALOG_CACHE_S = 30.0  # long enough that nothing expires during a test
    catalog_cache_clear()
    yield
    catalog_cache_clear()


@pytest.fixture
def product_list_calls(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every time the list selector runs; the first run lingers 0.3 s so that all readers arrive during it."""
    calls: list[float] = []
    real = apis.product_list

    def counted(**filters: Any) -> Any:
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(0.3)
        return real(**filters)

    monkeypatch.setattr(apis, "product_list", counted)
    return calls


def _read_list_concurrently() -> list[Any]:
    def read(index: int) -> Any:
        response = APIClient().get("/api/v1/products/?page_size=5")
        return response.status_code, response.json()

    return [outcome.unwrap() for outcome in run_concurrently(read, READERS)]


def test_concurrent_identical_reads_are_computed_once(catalog_cache: None, product_list_calls: list[float]) -> None:
    ProductFactory.create_batch(7)

    answers = _read_list_concurrently()

    assert len(product_list_calls) == 1  # coalesced: seven readers waited for the first one's answer
    assert {status for status, _ in answers} == {200}
    assert all(body == answers[0][1] for _, body in answers)
    assert len(answers[0][1]["results"]) == 5 and answers[0][1]["next"]


def test_a_parameter_the_list_ignores_is_answered_but_never_kept(
    catalog_cache: None, product_list_calls: list[float]
) -> None:
    """Cache flushing: random junk parameters must not become keys that push the real pages out."""
    ProductFactory.create_batch(3)
    client = APIClient()

    junk = [client.get(f"/api/v1/products/?page_size=5&x={index}") for index in range(3)]
    real = [client.get("/api/v1/products/?page_size=5") for _ in range(3)]

    assert {response.status_code for response in junk + real} == {200}
    # Three junk reads computed each time; the three real reads share one computation.
    assert len(product_list_calls) == 3 + 1


def test_twin_without_the_cache_every_reader_computes(settings: Any, product_list_calls: list[float]) -> None:
    settings.CATALOG_CACHE_S = 0
    ProductFactory.create_batch(7)

    answers = _read_list_concurrently()

    assert len(product_list_calls) == READERS
    assert {status for status, _ in answers} == {200}


def test_cached_stock_is_availability_ordering_rereads_it(
    catalog_cache: None, alice: User, client_for: Callable[[User], APIClient]
) -> None:
    product = ProductFactory.create(stock_on_hand=3, stock_received=3)
    shown = APIClient().get(f"/api/v1/products/{product.id}/").json()["stock_available"]
    # Someone else bought the last units; the catalog answer is at most CATALOG_CACHE_S old and still says 3.
    Product.objects.filter(pk=product.pk).update(stock_on_hand=0)
    still_shown = APIClient().get(f"/api/v1/products/{product.id}/").json()["stock_available"]

    refused = client_for(alice).post(
        "/api/v1/orders/", order_payload((product.id, 1)), format="json", HTTP_IDEMPOTENCY_KEY="cache-1"
    )

    assert (shown, still_shown) == (3, 3)
    assert refused.status_code == 409 and refused.json()["code"] == "insufficient_stock"
    product.refresh_from_db()
    assert product.stock_on_hand == 0  # nothing was sold on the cached figure


def test_a_missing_product_is_not_cached(catalog_cache: None) -> None:
    missing = APIClient().get("/api/v1/products/999999/")
    product = ProductFactory.create()
    found = APIClient().get(f"/api/v1/products/{product.id}/")

    assert missing.status_code == 404
    assert found.status_code == 200 and found.json()["id"] == product.id


def test_different_pages_and_filters_are_different_answers(catalog_cache: None) -> None:
    ProductFactory.create_batch(3)
    client = APIClient()

    first = client.get("/api/v1/products/?page_size=2").json()
    second = client.get(first["next"]).json()
    searched = client.get("/api/v1/products/?page_size=2&q=no-such-product").json()

    assert [p["id"] for p in first["results"]] != [p["id"] for p in second["results"]]
    assert searched["results"] == []


def test_the_cache_is_bounded_and_evicts_the_oldest_answer(settings: Any, catalog_cache: None) -> None:
    settings.CATALOG_CACHE_MAX_ENTRIES = 2
    catalog_cache_clear()
    first, second, third = ProductFactory.create_batch(3)
    client = APIClient()
    for product in (first, second, third):
        assert client.get(f"/api/v1/products/{product.id}/").status_code == 200
    Product.objects.filter(pk__in=[first.pk, third.pk]).update(name="Renamed")

    # Only two answers fit: the first was evicted and is read again; the third is still the cached one.
    assert client.get(f"/api/v1/products/{first.id}/").json()["name"] == "Renamed"
    assert client.get(f"/api/v1/products/{third.id}/").json()["name"] == third.name
