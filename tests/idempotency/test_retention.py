"""Defect 3, "a reused Idempotency-Key after the retention window silently drops the new order".

Key records are purged after IDEMPOTENCY_KEY_RETENTION_HOURS; the order keeps the request's fingerprint, so a
key reused after that is still judged: a different request is 422 `idempotency_key_reused` (never the old order
passed off as a new 201), and the same request is a replay of the order it made (`Idempotent-Replayed: true`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.sites import site
from django.test import Client, RequestFactory
from django.utils import timezone
from zeal import zeal_ignore

from accounts.models import User
from cart.models import Cart, CartItem
from cart.services import cart_checkout
from idempotency.models import IdempotencyKey
from idempotency.services import IdempotencyKeyReused, idempotency_purge_expired
from orders.models import Order
from orders.ports import payment_port
from shop.models import Product
from tests.conftest import bearer_client, order_payload
from tests.factories import UserFactory
from tests.orders.support import ADDRESS, stock_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rereads_are_deliberate() -> Iterator[None]:
    """Stock and orders are read again after each request on purpose; the API calls stay N+1-checked."""
    with zeal_ignore():
        yield


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payment_port, "capture_enqueue", lambda order_id: None)


def retention_passes(settings: Any) -> None:
    """The hourly purge, run after the retention window: every key record written so far is gone."""
    expired = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_RETENTION_HOURS, minutes=1)
    IdempotencyKey.objects.update(created_at=expired)
    assert idempotency_purge_expired() >= 1
    assert not IdempotencyKey.objects.exists()


def test_a_different_request_under_a_purged_key_is_422_and_places_nothing(
    alice: User, product_factory: Any, settings: Any
) -> None:
    tea, mug = product_factory(stock_on_hand=5), product_factory(stock_on_hand=5)
    client = bearer_client(alice)
    first = client.post("/api/v1/orders/", order_payload((tea.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert first.status_code == 201
    retention_passes(settings)

    reused = client.post("/api/v1/orders/", order_payload((mug.pk, 2)), format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert reused.status_code == 422, reused.content
    assert reused["Content-Type"] == "application/problem+json"
    assert reused.json()["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1
    assert (stock_of(tea), stock_of(mug)) == (4, 5)
    assert not IdempotencyKey.objects.exists()  # the refused claim was released, not stored


def test_the_same_request_under_a_purged_key_replays_the_order_it_made(
    alice: User, product_factory: Any, settings: Any
) -> None:
    tea = product_factory(stock_on_hand=5)
    client = bearer_client(alice)
    payload = order_payload((tea.pk, 1))
    first = client.post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k")
    retention_passes(settings)

    again = client.post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k")
    once_more = client.post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again["Location"] == first["Location"]
    assert once_more["Idempotent-Replayed"] == "true"
    assert once_more.content == again.content  # the replay is stored again: later repeats get the same bytes
    assert Order.objects.count() == 1
    assert stock_of(tea) == 4


def test_a_reuse_within_the_window_is_still_422(alice: User, product_factory: Any) -> None:
    tea = product_factory(stock_on_hand=5)
    client = bearer_client(alice)
    client.post("/api/v1/orders/", order_payload((tea.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="k")
    reused = client.post("/api/v1/orders/", order_payload((tea.pk, 3)), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert reused.status_code == 422
    assert stock_of(tea) == 4


def test_keys_stay_per_customer_after_the_purge(alice: User, bob: User, product_factory: Any, settings: Any) -> None:
    tea = product_factory(stock_on_hand=5)
    bearer_client(alice).post("/api/v1/orders/", order_payload((tea.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="k")
    retention_passes(settings)
    bobs = bearer_client(bob).post(
        "/api/v1/orders/", order_payload((tea.pk, 2)), format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert bobs.status_code == 201
    assert "Idempotent-Replayed" not in bobs
    assert stock_of(tea) == 2


# --- Web checkout shares the order's key space ------------------------------------------------------------------


def _cart_with(user: User, product: Product, quantity: int) -> int:
    cart, _ = Cart.objects.get_or_create(user=user)
    CartItem.objects.create(cart=cart, product=product, quantity=quantity)
    return Cart.objects.values_list("version", flat=True).get(pk=cart.pk)


def test_a_checkout_form_resubmitted_lands_on_its_order(alice: User, product_factory: Any) -> None:
    tea = product_factory(stock_on_hand=5)
    version = _cart_with(alice, tea, 2)
    first = cart_checkout(
        user=alice, expected_cart_version=version, shipping_address=ADDRESS, note="", idempotency_key="form-1"
    )
    again = cart_checkout(
        user=alice, expected_cart_version=version, shipping_address=ADDRESS, note="", idempotency_key="form-1"
    )
    assert (first.created, again.created) == (True, False)
    assert again.order.pk == first.order.pk
    assert stock_of(tea) == 3


def test_a_checkout_under_a_key_an_api_order_used_is_refused_not_answered_with_that_order(
    alice: User, product_factory: Any
) -> None:
    tea = product_factory(stock_on_hand=5)
    api_order = bearer_client(alice).post(
        "/api/v1/orders/", order_payload((tea.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="shared"
    )
    assert api_order.status_code == 201
    version = _cart_with(alice, tea, 2)

    with pytest.raises(IdempotencyKeyReused):
        cart_checkout(
            user=alice, expected_cart_version=version, shipping_address=ADDRESS, note="", idempotency_key="shared"
        )

    assert Order.objects.count() == 1
    assert CartItem.objects.filter(cart__user=alice).count() == 1  # the cart is still there to try again
    assert stock_of(tea) == 4


# --- The admin cannot delete keys --------------------------------------------------------------------------------


def test_the_admin_cannot_delete_idempotency_keys(alice: User, product_factory: Any) -> None:
    tea = product_factory(stock_on_hand=5)
    bearer_client(alice).post("/api/v1/orders/", order_payload((tea.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="k")
    key = IdempotencyKey.objects.get()
    boss = UserFactory.create(username="boss", is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(boss, backend="django.contrib.auth.backends.ModelBackend")

    page = admin.get(f"/admin/idempotency/idempotencykey/{key.pk}/delete/")
    bulk = admin.post(
        "/admin/idempotency/idempotencykey/", {"action": "delete_selected", "_selected_action": [key.pk], "post": "yes"}
    )

    assert page.status_code == 403
    assert bulk.status_code in {200, 302}  # the action is not offered: Django answers with the list again
    assert IdempotencyKey.objects.filter(pk=key.pk).exists()
    request = RequestFactory().get("/admin/")
    request.user = boss
    model_admin = site._registry[IdempotencyKey]
    assert not model_admin.has_delete_permission(request)
    assert "delete_selected" not in model_admin.get_actions(request)
