"""Connection storm: 200 clients at once through PgBouncer, and the same storm without it (the twin)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from orders.models import Order
from shop.models import Product
from tests.capacity.conftest import POOL_ROLE_CONNECTION_LIMIT
from tests.capacity.infra import (
    PG_HOST,
    PG_PORT,
    PeakSampler,
    PrivatePgBouncer,
    django_database_at,
    run_in_threads,
    server_connections,
)
from tests.conftest import order_payload
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 200
POOL_SIZE = 5


def _client_for(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _catalog_then_order(tokens: list[str], product_ids: list[int]) -> Callable[[int], tuple[int, int]]:
    def work(index: int) -> tuple[int, int]:
        client = _client_for(tokens[index % len(tokens)])
        catalog = client.get("/api/v1/products/?page_size=5")
        placed = client.post(
            "/api/v1/orders/",
            order_payload((product_ids[index], 1)),
            format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )
        return catalog.status_code, placed.status_code

    return work


def test_200_concurrent_clients_share_a_pool_of_5_server_connections(
    pgbouncer_factory: Callable[..., PrivatePgBouncer], pool_role: str
) -> None:
    products = ProductFactory.create_batch(CLIENTS, stock_on_hand=5)
    tokens = [str(RefreshToken.for_user(user).access_token) for user in UserFactory.create_batch(20)]
    bouncer = pgbouncer_factory(pool_size=POOL_SIZE, query_wait_timeout_s=120)
    database = bouncer.database
    held: dict[str, Any] = {}

    def look_while_every_client_is_connected() -> None:
        held["pool"] = bouncer.pool()
        held["server_connections"] = server_connections(role=pool_role, database=database)

    with (
        # 200 handshakes at once while the rest of the suite loads both cores: a client that takes longer than
        # the app's 3 s connect timeout to be greeted is a slow machine, not a pool that failed to share.
        django_database_at(host="127.0.0.1", port=bouncer.port, user=pool_role, connect_timeout_s=30),
        PeakSampler(lambda: server_connections(role=pool_role, database=database)) as peak,
    ):
        outcomes = run_in_threads(
            CLIENTS,
            _catalog_then_order(tokens, [product.pk for product in products]),
            while_held=look_while_every_client_is_connected,
        )

    assert [outcome for outcome in outcomes if outcome != (200, 201)] == []
    # Every client holds its own connection to PgBouncer at once...
    assert held["pool"]["cl_active"] + held["pool"]["cl_waiting"] >= CLIENTS
    # ...but PostgreSQL never saw more than the pool.
    assert peak.peak <= POOL_SIZE
    assert held["server_connections"] <= POOL_SIZE
    # Nothing accepted was lost, nothing oversold.
    assert Order.objects.count() == CLIENTS
    assert set(Product.objects.values_list("stock_on_hand", flat=True)) == {4}


def test_twin_without_a_pool_clients_beyond_the_connection_limit_get_refused(pool_role: str) -> None:
    """Protection off: every client opens its own PostgreSQL connection, and the limit is hit at client N+1.

    The pool role's CONNECTION LIMIT stands in for max_connections, so the shared server is never exhausted.
    """
    product = ProductFactory.create(stock_on_hand=5)
    token = str(RefreshToken.for_user(UserFactory.create()).access_token)
    held: dict[str, int] = {}

    def catalog(index: int) -> int:
        return _client_for(token).get(f"/api/v1/products/{product.pk}/").status_code

    database = str(settings.DATABASES["default"]["NAME"])
    with django_database_at(host=PG_HOST, port=PG_PORT, user=pool_role):
        statuses = run_in_threads(
            CLIENTS,
            catalog,
            while_held=lambda: held.update(open=server_connections(role=pool_role, database=database)),
        )

    # Each served client holds its own server connection; everyone past the limit got a 503, not a 500.
    assert held["open"] == statuses.count(200) <= POOL_ROLE_CONNECTION_LIMIT
    assert statuses.count(503) >= CLIENTS - POOL_ROLE_CONNECTION_LIMIT
    assert statuses.count(200) + statuses.count(503) == CLIENTS
