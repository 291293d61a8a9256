"""Graceful degradation, against a real gunicorn: PgBouncer paused or killed, Redis stopped.

Each test starts its own PgBouncer or Redis and its own gunicorn pointed at them, breaks them, and checks
what a client sees during the outage (503 problem+json with Retry-After, never a 500 or a hang) and after
it (full recovery without restarting the app, and no accepted order lost).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from orders.models import Order
from payments.models import Payment, PaymentStatus
from shop.models import Product
from tests.capacity.infra import AppServer, PrivatePgBouncer, PrivateRedis
from tests.conftest import order_payload
from tests.factories import TEST_PASSWORD, ProductFactory, UserFactory

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def _bearer(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


def _place(http: httpx.Client, user: User, product: Product, key: str) -> httpx.Response:
    return http.post(
        "/api/v1/orders/",
        json=order_payload((product.pk, 1)),
        headers={**_bearer(user), "Idempotency-Key": key},
    )


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["code"] == "service_unavailable"


@pytest.fixture
def pooled_app(
    pgbouncer_factory: Callable[..., PrivatePgBouncer], app_server_factory: Callable[..., AppServer], pool_role: str
) -> tuple[PrivatePgBouncer, AppServer]:
    bouncer = pgbouncer_factory(pool_size=4, query_wait_timeout_s=2)
    server = app_server_factory(
        DATABASE_URL=f"postgres://{pool_role}@127.0.0.1:{bouncer.port}/{bouncer.database}",
        REDIS_URL=settings.REDIS_URL,
    )
    return bouncer, server


def test_pgbouncer_paused_answers_503_then_recovers_without_losing_accepted_orders(
    pooled_app: tuple[PrivatePgBouncer, AppServer],
) -> None:
    bouncer, server = pooled_app
    alice = UserFactory.create(username="alice")
    product = ProductFactory.create(stock_on_hand=10)
    http = server.client()
    accepted = [_place(http, alice, product, f"before-{n}") for n in range(3)]
    assert [response.status_code for response in accepted] == [201, 201, 201]

    bouncer.admin("PAUSE")
    try:
        # Pool unavailable: each request waits query_wait_timeout (2 s), then gets a polite 503.
        _assert_unavailable(http.get(f"/api/v1/products/{product.pk}/"))
        _assert_unavailable(_place(http, alice, product, "during-pause"))
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] != "ok"
    finally:
        bouncer.admin("RESUME")

    # Recovery without a restart; the client's retry with the same key lands exactly one order.
    assert http.get(f"/api/v1/products/{product.pk}/").status_code == 200
    assert _place(http, alice, product, "during-pause").status_code == 201
    assert _place(http, alice, product, "during-pause").headers.get("Idempotent-Replayed") == "true"
    assert http.get("/readyz").status_code == 200
    accepted_ids = {response.json()["id"] for response in accepted}
    assert accepted_ids <= set(Order.objects.values_list("pk", flat=True))
    assert Order.objects.filter(customer=alice).count() == 4
    assert Product.objects.get(pk=product.pk).stock_on_hand == 6


def test_pgbouncer_killed_answers_503_fast_then_recovers_when_it_is_back(
    pooled_app: tuple[PrivatePgBouncer, AppServer],
) -> None:
    bouncer, server = pooled_app
    alice = UserFactory.create(username="alice")
    product = ProductFactory.create(stock_on_hand=10)
    http = server.client()
    before = _place(http, alice, product, "before-kill")
    assert before.status_code == 201

    bouncer.stop()
    # Connection refused: the persistent connections of every gunicorn thread are now dead.
    for _ in range(4):
        _assert_unavailable(http.get(f"/api/v1/products/{product.pk}/"))
    _assert_unavailable(_place(http, alice, product, "during-outage"))
    page = http.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert "Traceback" not in page.text

    bouncer.start()
    # CONN_HEALTH_CHECKS and close_old_connections replace the dead connections: no restart needed.
    statuses = [http.get(f"/api/v1/products/{product.pk}/").status_code for _ in range(8)]
    assert statuses == [200] * 8
    assert _place(http, alice, product, "during-outage").status_code == 201
    assert set(Order.objects.filter(customer=alice).values_list("idempotency_key", flat=True)) == {
        "before-kill",
        "during-outage",
    }


def test_redis_stopped_catalog_serves_readiness_fails_and_throttles_behave_as_documented(
    app_server_factory: Callable[..., AppServer], private_redis: PrivateRedis
) -> None:
    alice = UserFactory.create(username="alice")
    product = ProductFactory.create(stock_on_hand=10)
    database = settings.DATABASES["default"]
    server = app_server_factory(
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        REDIS_URL=private_redis.url(0),
        PAYMENT_PROVIDER_URL="http://127.0.0.1:9",  # nobody home: capture tasks could not succeed anyway
    )
    http = server.client()
    assert http.get("/readyz").status_code == 200

    private_redis.stop()

    # Catalog: still served (the cache is a miss, sessions live in PostgreSQL).
    assert http.get("/api/v1/products/").status_code == 200
    assert http.get(f"/api/v1/products/{product.pk}/").status_code == 200
    # Readiness names what failed.
    ready = http.get("/readyz")
    assert ready.status_code == 503
    checks: dict[str, Any] = ready.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["cache"] != "ok"
    assert checks["broker"] != "ok"
    # Login throttle fails CLOSED: 503 + Retry-After, never an unthrottled password check.
    login = http.post("/api/v1/auth/token/", json={"username": "alice", "password": TEST_PASSWORD})
    assert login.status_code == 503
    assert login.json()["code"] == "throttle_unavailable"
    assert "Retry-After" in login.headers
    # Write throttle fails OPEN, and the broker being down loses no payment work: the order is recorded
    # and its payment row waits in pending for the re-drive job.
    placed = _place(http, alice, product, "redis-down")
    assert placed.status_code == 201, placed.text
    order = Order.objects.get(pk=placed.json()["id"])
    assert order.status == "pending_payment"
    assert Payment.objects.get(order=order).status == PaymentStatus.PENDING

    private_redis.start()  # same port
    assert http.get("/readyz").status_code == 200
    assert http.post("/api/v1/auth/token/", json={"username": "alice", "password": TEST_PASSWORD}).status_code == 200


def test_database_unreachable_answers_503_within_the_connect_timeout(
    app_server_factory: Callable[..., AppServer],
) -> None:
    """No PgBouncer at all on the configured port (never started): 503 problem+json, and the HTML page too."""
    from tests.capacity.infra import free_port

    server = app_server_factory(
        DATABASE_URL=f"postgres://shop@127.0.0.1:{free_port()}/{uuid.uuid4().hex}",
        REDIS_URL=settings.REDIS_URL,
    )
    http = server.client()
    _assert_unavailable(http.get("/api/v1/products/"))
    page = http.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert page.headers["Retry-After"]
    assert "<h1>" in page.text
