"""The admin: staff only, every changelist and change page opens, changelists cost the same number of queries
whatever the number of rows (list_select_related), and object grants are managed there (GuardedModelAdmin)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import connection
from django.db.models import Model
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from cart.models import Cart, CartItem
from idempotency.models import IdempotencyKey
from orders.models import Order
from payments.models import Payment
from tests.authorization.scene import Scene, build_scene, make_order
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

SHOP_APPS = {"accounts", "shop", "orders", "payments", "idempotency", "cart"}
SHOP_MODELS = [model for model in admin.site._registry if model._meta.app_label in SHOP_APPS]


@pytest.fixture
def scene() -> Scene:
    return build_scene()


@pytest.fixture
def boss() -> Client:
    client = Client()
    client.force_login(UserFactory.create(username="boss", is_staff=True, is_superuser=True))
    return client


def _add_rows(scene: Scene, count: int) -> None:
    for index in range(count):
        customer = UserFactory.create()
        order = make_order(customer=customer, centre=scene.berlin, product=scene.product, shipping_name=f"N{index}")
        Payment.objects.create(order=order, idempotency_key=f"pay-{order.pk}", amount=order.total, currency="EUR")
        IdempotencyKey.objects.create(user=customer, key=f"k-{index}", fingerprint="f", locked_at=order.created_at)
        cart = Cart.objects.create(user=customer)
        CartItem.objects.create(cart=cart, product=ProductFactory.create(category=scene.tea), quantity=1)


def test_every_shop_model_is_in_the_admin() -> None:
    labels = {model._meta.label for model in SHOP_MODELS}
    assert {
        "accounts.User",
        "shop.Category",
        "shop.Product",
        "orders.FulfilmentCentre",
        "orders.Order",
        "payments.Payment",
        "idempotency.IdempotencyKey",
        "cart.Cart",
    } <= labels


@pytest.mark.parametrize("model", SHOP_MODELS, ids=[model._meta.label for model in SHOP_MODELS])
def test_changelists_cost_the_same_queries_for_3_rows_or_13(model: type[Model], scene: Scene, boss: Client) -> None:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    _add_rows(scene, 1)
    with CaptureQueriesContext(connection) as few:
        assert boss.get(url).status_code == 200
    _add_rows(scene, 10)
    with CaptureQueriesContext(connection) as many:
        response = boss.get(url)
    assert response.status_code == 200
    # N+1: one more row must not mean one more query.
    assert len(many) == len(few), f"{model._meta.label}: {len(few)} queries for few rows, {len(many)} for many"


@pytest.mark.parametrize("model", SHOP_MODELS, ids=[model._meta.label for model in SHOP_MODELS])
def test_change_pages_open(model: type[Model], scene: Scene, boss: Client) -> None:
    _add_rows(scene, 1)
    instance = model._default_manager.order_by("pk").first()
    assert instance is not None
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[instance.pk])
    # A user's change page loads two users by design (the signed-in one, the edited one): not an N+1.
    with override_settings(ZEAL_RAISE=model is not User):
        assert boss.get(url).status_code == 200


def test_order_and_payment_pages_hide_idempotency_keys(scene: Scene, boss: Client) -> None:
    _add_rows(scene, 1)
    order = Order.objects.exclude(idempotency_key="").first()
    assert order is not None
    page = boss.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert order.idempotency_key not in page


def test_object_grants_are_managed_in_the_admin(scene: Scene, boss: Client) -> None:
    for name in ("admin:orders_fulfilmentcentre_permissions", "admin:shop_category_permissions"):
        target = scene.berlin if "centre" in name else scene.tea
        assert boss.get(reverse(name, args=[target.pk])).status_code == 200


def test_customers_and_anonymous_users_are_sent_to_log_in(scene: Scene) -> None:
    url = reverse("admin:orders_order_changelist")
    assert Client().get(url).status_code == 302
    customer = Client()
    customer.force_login(scene.owner)
    response = customer.get(url)
    assert response.status_code == 302 and "login" in response["Location"]


def test_staff_without_model_permissions_cannot_open_changelists(scene: Scene) -> None:
    staff = Client()
    staff.force_login(User.objects.get(pk=scene.staff_with_grant.pk))
    # The scene's orders exist; object grants are not model permissions, so the changelist stays closed.
    assert staff.get(reverse("admin:orders_order_changelist")).status_code == 403
