"""Fixtures for the web (HTML) tests: signed-in test clients and a helper that reads a rendered form."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.test import Client
from zeal import zeal_ignore

from accounts.models import User
from shop.models import Category, Product
from tests.factories import CategoryFactory, ProductFactory

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
ADDRESS = {
    "name": "Alice Liddell",
    "line1": "1 Rabbit Hole",
    "line2": "",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
    "note": "",
}


def signed_in(user: User, **client_kwargs: object) -> Client:
    client = Client(**client_kwargs)  # type: ignore[arg-type]
    with zeal_ignore():  # set-up, not the code under test
        client.force_login(user, backend=MODEL_BACKEND)
    return client


@pytest.fixture
def alice_client(alice: User) -> Client:
    return signed_in(alice)


@pytest.fixture
def bob_client(bob: User) -> Client:
    return signed_in(bob)


@pytest.fixture
def tea(db: None) -> Category:
    return CategoryFactory.create(name="Tea", slug="tea")


@pytest.fixture
def sencha(tea: Category) -> Product:
    return ProductFactory.create(
        category=tea, name="Sencha", slug="sencha", sku="TEA-1", price=Decimal("12.50"), stock_on_hand=20
    )


@pytest.fixture
def earl_grey(tea: Category) -> Product:
    return ProductFactory.create(
        category=tea, name="Earl Grey", slug="earl-grey", sku="TEA-2", price=Decimal("9.90"), stock_on_hand=20
    )


_HIDDEN = re.compile(r'<input type="hidden" name="(?P<name>[^"]+)" value="(?P<value>[^"]*)"')


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of a rendered page (csrf token, idempotency key, versions), by name."""
    return {match["name"]: html.unescape(match["value"]) for match in _HIDDEN.finditer(page)}


@pytest.fixture
def checkout_form() -> Callable[[Client], dict[str, str]]:
    """GET the checkout page as that client and return the form it would submit: address + hidden fields."""

    def read(client: Client) -> dict[str, str]:
        response = client.get("/cart/checkout/")
        assert response.status_code == 200
        fields = hidden_fields(response.content.decode())
        fields.pop("csrfmiddlewaretoken", None)
        return {**ADDRESS, **fields}

    return read
