"""Shared fixtures. Tests run against the real PostgreSQL through PgBouncer and the real Redis.

The test database is created and dropped directly on PostgreSQL (DDL does not belong in a pooler); every
test then talks to it through PgBouncer, exactly as the running app does.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dj_database_url
import psycopg
import pytest
from django.conf import settings
from django.test.utils import setup_databases
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from tests.factories import ProductFactory, UserFactory

# The servers tests start (gunicorn, the workshop, the load smoke) inherit this: a burst of test requests on a
# loaded 2-core CI machine must not be shed as overload. tests/capacity/test_shedding.py sets its own limit.
os.environ.setdefault("SHEDDING_MAX_QUEUE_MS", "0")

DEFAULT_ADDRESS = {
    "name": "A. Buyer",
    "line1": "1 Main St",
    "line2": "",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "DE",
}


def _drop_database_force(name: str) -> None:
    direct = dj_database_url.parse(settings.DIRECT_DATABASE_URL)
    with psycopg.connect(
        host=direct["HOST"], port=direct["PORT"], user=direct["USER"], dbname="postgres", autocommit=True
    ) as conn:
        # The app role's statement_timeout (5 s) is for requests; dropping a database on a busy box may take longer.
        conn.execute("SET statement_timeout = 0")
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment: None, django_db_blocker: Any) -> Iterator[None]:
    from django.db import connections

    connection = connections["default"]
    pooled = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}
    direct = dj_database_url.parse(settings.DIRECT_DATABASE_URL)
    test_name = connection.settings_dict["TEST"]["NAME"]
    with django_db_blocker.unblock():
        _drop_database_force(test_name)
        connection.settings_dict.update(HOST=direct["HOST"], PORT=direct["PORT"])
        setup_databases(verbosity=0, interactive=False, keepdb=False)
        connection.close()
        # From here on every query goes through PgBouncer.
        connection.settings_dict.update(pooled)
        settings.DATABASES["default"].update(pooled)
    yield
    with django_db_blocker.unblock():
        connection.close()
        _drop_database_force(test_name)


@pytest.fixture(autouse=True)
def _own_circuit_breaker(settings: Any) -> None:
    """Each test gets a payment circuit breaker of its own (its state lives in Redis and would otherwise leak
    from a test that broke the provider into the next one, or from the previous run)."""
    settings.PAYMENT_BREAKER_NAME = f"test-{uuid.uuid4().hex}"


@pytest.fixture(autouse=True)
def _fail_on_n_plus_one(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """N+1: every test body runs under django-zeal (each request also gets its own zeal context, from the
    middleware), so a lazy load repeated in a loop fails the test. Wrap a deliberate repeat in `zeal_ignore()`."""
    if not getattr(settings, "ZEAL_ENABLED", False):
        yield
        return
    from factory.django import DjangoModelFactory
    from zeal import zeal_context, zeal_ignore

    generate = DjangoModelFactory._generate.__func__  # type: ignore[attr-defined]

    def generate_outside_zeal(cls: Any, strategy: Any, params: Any) -> Any:
        # Test data set-up (get_or_create in a batch) is not the code under test.
        with zeal_ignore():
            return generate(cls, strategy, params)

    monkeypatch.setattr(DjangoModelFactory, "_generate", classmethod(generate_outside_zeal))
    with zeal_context():
        yield


@pytest.fixture
def alice(db: None) -> User:
    """The owner in most tests."""
    return UserFactory.create(username="alice")


@pytest.fixture
def bob(db: None) -> User:
    """Another customer, who must never see alice's things."""
    return UserFactory.create(username="bob")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def bearer_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    return bearer_client


@pytest.fixture
def product_factory(db: None) -> type[ProductFactory]:
    return ProductFactory


def order_payload(*lines: tuple[int, int], **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "lines": [{"product_id": product_id, "quantity": quantity} for product_id, quantity in lines],
        "shipping_address": dict(DEFAULT_ADDRESS),
        "note": "",
    }
    payload.update(overrides)
    return payload
