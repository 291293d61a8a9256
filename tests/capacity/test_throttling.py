"""Rate limits: a burst of real threads gets exactly the limit through, the rest 429 with Retry-After."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from core.redis_pool import redis_connection
from core.throttling import Rate, _counter_key, throttle_hit, throttle_rate
from orders.models import Order
from tests.capacity.infra import run_in_threads
from tests.conftest import order_payload
from tests.factories import TEST_PASSWORD, ProductFactory, UserFactory

BURST = 40
LIMIT = 10


@pytest.fixture(autouse=True)
def fresh_counters(settings: Any) -> Iterator[None]:
    """Counters live in Redis across tests (and test runs): start each test from zero."""
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES}
    client = redis_connection()
    for key in client.scan_iter("throttle:*"):
        client.delete(key)
    yield


def test_rate_parsing_refuses_typos() -> None:
    assert Rate.parse("30/min") == Rate(limit=30, window_s=60)
    assert Rate.parse("10/hour") == Rate(limit=10, window_s=3600)
    for bad in ("30", "0/min", "x/min", "30/fortnight"):
        with pytest.raises(ValueError):
            Rate.parse(bad)


@pytest.mark.django_db(transaction=True)
def test_burst_of_orders_above_the_limit_gets_429_and_never_more_successes_than_allowed(settings: Any) -> None:
    settings.THROTTLE_RATES["write_user"] = f"{LIMIT}/min"
    alice = UserFactory.create(username="alice")
    product = ProductFactory.create(stock_on_hand=BURST)
    token = str(RefreshToken.for_user(alice).access_token)

    def place(index: int) -> tuple[int, dict[str, str], Any]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = client.post(
            "/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
        )
        return response.status_code, dict(response.headers), response.json()

    outcomes = run_in_threads(BURST, place)

    statuses = [status for status, _, _ in outcomes]  # type: ignore[misc]
    assert statuses.count(201) == LIMIT
    assert statuses.count(429) == BURST - LIMIT
    refused = [(headers, body) for status, headers, body in outcomes if status == 429]  # type: ignore[misc]
    for headers, body in refused:
        assert headers["Content-Type"] == "application/problem+json"
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert body["code"] == "throttled"
    # What must not have happened: a refused request wrote nothing.
    assert Order.objects.count() == LIMIT


@pytest.mark.django_db
def test_write_throttle_leaves_reads_alone(settings: Any) -> None:
    settings.THROTTLE_RATES["write_user"] = "1/min"
    alice = UserFactory.create(username="alice")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(alice).access_token}")
    assert [client.get("/api/v1/orders/").status_code for _ in range(5)] == [200] * 5


@pytest.mark.django_db
def test_login_is_throttled_per_username_across_ips_and_per_ip_across_usernames(settings: Any) -> None:
    settings.THROTTLE_RATES.update(login_username="3/min", login_ip="5/min")
    UserFactory.create(username="alice")
    client = APIClient()

    def login(username: str, ip: str) -> int:
        return client.post(
            "/api/v1/auth/token/", {"username": username, "password": "wrong"}, format="json", REMOTE_ADDR=ip
        ).status_code

    # Credential stuffing against one account from many addresses: the username counter stops it.
    assert [login("alice", f"10.0.0.{n}") for n in range(5)] == [401, 401, 401, 429, 429]
    # Many accounts from one address: the IP counter stops it.
    assert [login(f"user{n}", "10.9.9.9") for n in range(7)] == [401] * 5 + [429, 429]
    # Someone else, elsewhere, is not affected.
    assert login("bob", "10.1.1.1") == 401


@pytest.mark.django_db
@pytest.mark.urls("tests.capacity.urls")
def test_web_views_get_a_429_page_with_retry_after(settings: Any) -> None:
    settings.THROTTLE_RATES["login_ip"] = "2/min"
    client = Client()
    statuses = [client.post("/_test/login/", {"username": f"u{n}"}).status_code for n in range(3)]
    refused = client.post("/_test/login/", {"username": "u9"}, HTTP_ACCEPT="text/html")
    assert statuses == [200, 200, 429]
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert b"Too many requests" in refused.content
    assert client.get("/_test/login/").status_code == 200  # safe methods are not counted


@pytest.mark.django_db
def test_register_is_throttled_per_ip(settings: Any) -> None:
    settings.THROTTLE_RATES["register_ip"] = "2/hour"
    client = APIClient()
    statuses = [
        client.post(
            "/api/v1/auth/register/",
            {"username": f"newcomer{n}", "email": f"n{n}@example.com", "password": TEST_PASSWORD},
            format="json",
        ).status_code
        for n in range(3)
    ]
    assert statuses == [201, 201, 429]


# --- The counter itself, raced directly -----------------------------------------------------------------------


def _naive_read_then_write_hit(scope: str, identity: str) -> bool:
    """The bug this module exists to prevent: GET, compare, then SET, in separate round trips."""
    client = redis_connection()
    key = _counter_key(scope, identity) + ":naive"
    current = int(client.get(key) or 0)
    if current >= throttle_rate(scope).limit:
        return False
    time.sleep(0.005)  # the network round trip between the read and the write
    client.set(key, current + 1, ex=60)
    return True


def test_atomic_counter_lets_exactly_the_limit_through_under_a_thread_burst(settings: Any) -> None:
    settings.THROTTLE_RATES["write_ip"] = f"{LIMIT}/min"
    results = run_in_threads(BURST, lambda _: throttle_hit("write_ip", "203.0.113.7").allowed)
    assert results.count(True) == LIMIT


def test_twin_a_read_then_write_counter_lets_more_than_the_limit_through(settings: Any) -> None:
    settings.THROTTLE_RATES["write_ip"] = f"{LIMIT}/min"
    results = run_in_threads(BURST, lambda _: _naive_read_then_write_hit("write_ip", "203.0.113.8"))
    assert results.count(True) > LIMIT


@pytest.mark.django_db
def test_the_web_login_and_checkout_pages_are_throttled(settings: Any) -> None:
    settings.THROTTLE_RATES.update(login_ip="2/min", write_user="1/min")
    browser = Client()
    logins = [
        browser.post("/accounts/login/", {"username": f"someone{n}", "password": "wrong"}).status_code for n in range(3)
    ]
    assert logins[:2] != [429, 429]
    assert logins[2] == 429

    alice = UserFactory.create(username="alice")
    browser.force_login(alice)
    assert browser.get("/cart/checkout/").status_code != 429  # looking is free
    first = browser.post("/cart/checkout/", {})
    second = browser.post("/cart/checkout/", {})
    assert first.status_code != 429
    assert second.status_code == 429
    assert int(second["Retry-After"]) >= 1


@pytest.mark.django_db
@pytest.mark.parametrize("write", ["add", "update", "remove"])
def test_every_cart_write_counts_against_the_write_limit(settings: Any, write: str) -> None:
    """A script hammering "add to cart" is a row lock and an UPDATE per request: throttled like checkout."""
    settings.THROTTLE_RATES.update(write_user="2/min")
    alice = UserFactory.create(username="alice")
    product = ProductFactory.create(stock_on_hand=50)
    browser = Client()
    browser.force_login(alice)
    url = {
        "add": f"/cart/add/{product.pk}/",
        "update": f"/cart/items/{product.pk}/",
        "remove": f"/cart/items/{product.pk}/remove/",
    }[write]
    statuses = [browser.post(url, {"quantity": 1}).status_code for _ in range(3)]
    assert statuses[:2] == [303, 303]
    assert statuses[2] == 429
    assert browser.get("/cart/").status_code == 200  # looking is free


@pytest.mark.django_db
def test_the_admin_login_is_throttled_like_the_shops(settings: Any) -> None:
    settings.THROTTLE_RATES.update(login_ip="2/min")
    browser = Client()
    logins = [
        browser.post("/admin/login/", {"username": f"someone{n}", "password": "wrong"}).status_code for n in range(3)
    ]
    assert logins == [200, 200, 429]  # the form with its error twice, then the 429 page
    assert browser.get("/admin/login/").status_code == 200  # the form itself is not counted
