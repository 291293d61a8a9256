"""A new shipping country re-routes the order to the centre that serves it: service, API PATCH and web edit.

Before, the centre was chosen once at placement; an order moved from Germany to France kept shipping from
Berlin, and only Berlin's staff (scoped to their centre) could see it.
"""

from __future__ import annotations

import pytest
from zeal import zeal_ignore

from accounts.models import User
from orders.forms import order_details, sign_original
from orders.models import FulfilmentCentre, Order
from tests.conftest import bearer_client
from tests.factories import FulfilmentCentreFactory, ProductFactory
from tests.orders.support import place
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def centres() -> dict[str, FulfilmentCentre]:
    return {
        "berlin": FulfilmentCentreFactory.create(code="ber", country_codes="DE AT"),
        "lyon": FulfilmentCentreFactory.create(code="lyo", country_codes="FR BE"),
    }


@pytest.fixture
def order(alice: User, centres: dict[str, FulfilmentCentre]) -> Order:
    placed = place(alice, (ProductFactory.create(stock_on_hand=5), 1))
    assert placed.fulfilment_centre == centres["berlin"]
    return placed


def test_api_patch_of_the_country_reroutes(alice: User, order: Order, centres: dict[str, FulfilmentCentre]) -> None:
    address = {**order.shipping_address, "country": "BE"}
    response = bearer_client(alice).patch(
        f"/api/v1/orders/{order.pk}/", {"shipping_address": address}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 200, response.content
    assert response.json()["shipping_address"]["country"] == "BE"
    assert Order.objects.get(pk=order.pk).fulfilment_centre == centres["lyon"]


def test_web_edit_of_the_country_reroutes(alice: User, order: Order, centres: dict[str, FulfilmentCentre]) -> None:
    client = signed_in(alice)
    form = {**order_details(order), "country": "FR", "version": order.version, "original": sign_original(order)}
    with zeal_ignore():
        response = client.post(f"/orders/{order.pk}/edit/", form)
    assert response.status_code == 303
    assert Order.objects.get(pk=order.pk).fulfilment_centre == centres["lyon"]


def test_an_edit_that_keeps_the_country_keeps_the_centre(
    alice: User, order: Order, centres: dict[str, FulfilmentCentre]
) -> None:
    address = {**order.shipping_address, "city": "Potsdam"}
    response = bearer_client(alice).patch(
        f"/api/v1/orders/{order.pk}/", {"shipping_address": address}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 200
    assert Order.objects.get(pk=order.pk).fulfilment_centre == centres["berlin"]
