"""The Idempotency-Key contract through the real HTTP stack: a live WSGI server, httpx clients, real threads.

The other tests call the views through Django's test client; these go through sockets, headers and
middleware exactly as an outside client does, against the same PostgreSQL through PgBouncer.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx
import pytest

from accounts.models import User
from idempotency.models import IdempotencyKey
from orders.models import Order
from orders.ports import payment_port
from shop.models import Product
from tests.capacity.infra import wait_for
from tests.concurrency import raw_connection, run_concurrently
from tests.conftest import order_payload
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payment_port, "capture_enqueue", lambda order_id: None)


def sign_in(base_url: str, user: User) -> dict[str, str]:
    response = httpx.post(
        f"{base_url}/api/v1/auth/token/", json={"username": user.username, "password": TEST_PASSWORD}, timeout=10
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access']}"}


def test_replay_reuse_in_flight_and_missing_key_over_http(
    live_server: Any, alice: User, product_factory: Any, settings: Any
) -> None:
    settings.ORDER_LOCK_TIMEOUT_MS = 4_000  # below the role's statement_timeout (5 s)
    product = product_factory(stock_on_hand=5)
    url = f"{live_server.url}/api/v1/orders/"
    auth = sign_in(live_server.url, alice)
    headers = {**auth, "Idempotency-Key": "live-1"}
    payload = order_payload((product.pk, 1))
    first: dict[str, httpx.Response] = {}

    with raw_connection() as holder:
        # Another transaction holds the stock row, so the first request stays in flight while we knock again.
        holder.execute(f"SELECT id FROM {Product._meta.db_table} WHERE id = %s FOR UPDATE", [product.pk])
        submit = threading.Thread(target=lambda: first.update(reply=httpx.post(url, json=payload, headers=headers)))
        submit.start()
        # Poll a database state (not a clock): the first request holds its key, then the test acts on it.
        wait_for(
            lambda: IdempotencyKey.objects.filter(user=alice, key="live-1", status="in_flight").exists(),
            timeout_s=15,
            every_s=0.05,
            what="the first request to hold its key",
        )
        in_flight = httpx.post(url, json=payload, headers=headers)
        holder.rollback()
    submit.join(timeout=30)

    assert in_flight.status_code == 409
    assert in_flight.headers["Content-Type"] == "application/problem+json"
    assert in_flight.json()["code"] == "request_in_flight"
    assert int(in_flight.headers["Retry-After"]) >= 1
    original = first["reply"]
    assert original.status_code == 201
    assert "Idempotent-Replayed" not in original.headers

    replay = httpx.post(url, json=payload, headers=headers)
    assert replay.status_code == 201
    assert replay.content == original.content
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["ETag"] == original.headers["ETag"]

    reused = httpx.post(url, json=order_payload((product.pk, 2)), headers=headers)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"

    missing = httpx.post(url, json=payload, headers=auth)
    assert missing.status_code == 400
    assert missing.json()["code"] == "idempotency_key_missing"

    assert Order.objects.count() == 1
    assert Product.objects.values_list("stock_on_hand", flat=True).get(pk=product.pk) == 4


def test_a_burst_of_purchases_over_http_never_oversells(
    live_server: Any, alice: User, product_factory: Any, settings: Any
) -> None:
    settings.ORDER_LOCK_TIMEOUT_MS = 4_000  # below the role's statement_timeout (5 s)
    product = product_factory(stock_on_hand=5)
    url = f"{live_server.url}/api/v1/orders/"
    auth = sign_in(live_server.url, alice)

    def buy(index: int) -> httpx.Response:
        return httpx.post(
            url, json=order_payload((product.pk, 1)), headers={**auth, "Idempotency-Key": f"burst-{index}"}, timeout=60
        )

    replies = [outcome.unwrap() for outcome in run_concurrently(buy, 20)]

    assert Counter(reply.status_code for reply in replies) == {201: 5, 409: 15}
    # Normally insufficient_stock; on a very slow box a buyer may have waited too long for the lock: busy.
    assert {reply.json()["code"] for reply in replies if reply.status_code == 409} <= {"insufficient_stock", "busy"}
    assert Product.objects.values_list("stock_on_hand", flat=True).get(pk=product.pk) == 0
    assert Order.objects.count() == 5
