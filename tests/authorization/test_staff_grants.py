"""Staff roles with object permissions (django-guardian): what a grant opens, what it does not, and that
removing it closes access at once, even for a token issued before the change.

Actors (tests/authorization/scene.py): greta is in the group "Fulfilment Berlin" (granted the Berlin centre)
and is granted the Tea category directly; sam is granted Rotterdam (through his group) and Coffee.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from guardian.shortcuts import assign_perm, remove_perm
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from core.errors import NotFound
from orders.models import Order, OrderStatus
from shop.models import Product
from shop.services import ProductChanges, product_update
from tests.authorization.scene import FULFIL, MANAGE_CATEGORY, Scene, build_scene, make_order
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def api(user: User) -> Client:
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {RefreshToken.for_user(user).access_token}"
    return client


def web(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def staff_order_ids(client: Client) -> set[int]:
    response = client.get("/api/v1/staff/orders/")
    assert response.status_code == 200, response.content
    return {order["id"] for order in response.json()["results"]}


def row(order: Order) -> list[Any]:
    return list(Order.objects.filter(pk=order.pk).values())


@pytest.fixture
def scene() -> Scene:
    return build_scene()


# --- Fulfilment staff: orders of the granted centres -----------------------------------------------------------


def test_a_staff_member_granted_one_centre_sees_only_its_orders(scene: Scene) -> None:
    greta = scene.staff_with_grant
    rotterdam_paid = make_order(
        customer=scene.other_customer, centre=scene.rotterdam, product=scene.coffee_product, status="paid"
    )
    client = api(greta)

    assert staff_order_ids(client) == {scene.order.pk, scene.paid_order.pk}
    assert client.get(f"/api/v1/staff/orders/{scene.bob_order.pk}/").status_code == 404
    assert client.post(f"/api/v1/staff/orders/{rotterdam_paid.pk}/fulfil/").status_code == 404
    assert Order.objects.get(pk=rotterdam_paid.pk).status == OrderStatus.PAID
    # The centre filter cannot widen the scope: asking for Rotterdam gives nothing.
    assert client.get("/api/v1/staff/orders/?centre=rotterdam").json()["results"] == []

    page = web(greta).get(reverse("staff:orders")).content.decode()
    assert str(scene.order.number) in page and str(scene.paid_order.number) in page
    assert str(scene.bob_order.number) not in page and str(rotterdam_paid.number) not in page


def test_removing_the_grant_removes_access_at_once(scene: Scene) -> None:
    greta = scene.staff_with_grant
    client = api(greta)  # a token issued while the grant existed
    assert staff_order_ids(client) == {scene.order.pk, scene.paid_order.pk}

    remove_perm(FULFIL, scene.berlin_group, scene.berlin)

    # Same token, next request: tokens carry identity, never permissions.
    assert staff_order_ids(client) == set()
    before = row(scene.paid_order)
    assert client.get(f"/api/v1/staff/orders/{scene.paid_order.pk}/").status_code == 404
    assert client.post(f"/api/v1/staff/orders/{scene.paid_order.pk}/fulfil/").status_code == 404
    assert row(scene.paid_order) == before
    assert web(greta).get(reverse("staff:order", kwargs={"pk": scene.order.pk})).status_code == 404


def test_leaving_the_group_removes_access_at_once(scene: Scene) -> None:
    greta = scene.staff_with_grant
    client = api(greta)
    greta.groups.remove(scene.berlin_group)
    assert staff_order_ids(client) == set()


def test_a_new_grant_opens_access_at_once(scene: Scene) -> None:
    sam = scene.staff_without_grant
    client = api(sam)
    assert scene.order.pk not in staff_order_ids(client)
    assign_perm(FULFIL, sam, scene.berlin)
    assert {scene.order.pk, scene.paid_order.pk, scene.bob_order.pk} <= staff_order_ids(client)


def test_a_model_wide_permission_does_not_open_every_centre(scene: Scene) -> None:
    sam = scene.staff_without_grant
    sam.user_permissions.add(Permission.objects.get(codename="fulfil_centre_orders"))
    # Grants are per object: the model-level permission (e.g. ticked by mistake in the admin) opens nothing.
    assert staff_order_ids(api(User.objects.get(pk=sam.pk))) == {scene.bob_order.pk}


def test_a_superuser_sees_every_centre(scene: Scene) -> None:
    boss = UserFactory.create(username="boss", is_staff=True, is_superuser=True)
    assert {scene.order.pk, scene.paid_order.pk, scene.bob_order.pk} <= staff_order_ids(api(boss))


def test_shipping_needs_a_paid_order_of_a_granted_centre(scene: Scene) -> None:
    client = api(scene.staff_with_grant)
    shipped = client.post(f"/api/v1/staff/orders/{scene.paid_order.pk}/fulfil/")
    assert shipped.status_code == 200
    assert shipped.json()["status"] == OrderStatus.FULFILLED
    before = row(scene.order)
    pending = client.post(f"/api/v1/staff/orders/{scene.order.pk}/fulfil/")
    assert pending.status_code == 409
    assert pending.json()["code"] == "not_fulfillable"
    assert row(scene.order) == before


def test_customers_are_kept_out_of_the_staff_section(scene: Scene) -> None:
    alice = scene.owner
    assert api(alice).get("/api/v1/staff/orders/").status_code == 403
    # Even her own order: the staff section is closed to customers before any object is looked up.
    assert api(alice).get(f"/api/v1/staff/orders/{scene.order.pk}/").status_code == 403
    assert web(alice).get(reverse("staff:home")).status_code == 403
    assert Client().get("/api/v1/staff/orders/").status_code == 401


def test_staff_order_responses_carry_no_customer_account_data(scene: Scene) -> None:
    body = api(scene.staff_with_grant).get(f"/api/v1/staff/orders/{scene.order.pk}/").json()
    assert "customer" not in body and "idempotency_key" not in body
    assert scene.owner.email not in str(body) and scene.owner.username not in str(body)
    assert body["fulfilment_centre"] == "berlin"


# --- Catalog managers: products of the granted categories ------------------------------------------------------


def test_a_catalog_manager_edits_only_products_of_granted_categories(scene: Scene) -> None:
    client = api(scene.staff_with_grant)
    listed = {product["id"] for product in client.get("/api/v1/staff/products/").json()["results"]}
    assert listed == {scene.product.pk}

    edited = client.patch(
        f"/api/v1/staff/products/{scene.product.pk}/",
        {"name": "Sencha Premium", "price": "13.90"},
        content_type="application/json",
        headers={"If-Match": '"1"'},
    )
    assert edited.status_code == 200, edited.content
    assert edited.json()["name"] == "Sencha Premium" and edited.json()["version"] == 2
    assert edited["ETag"] == '"2"'

    coffee_before = Product.objects.filter(pk=scene.coffee_product.pk).values().get()
    refused = client.patch(
        f"/api/v1/staff/products/{scene.coffee_product.pk}/",
        {"name": "Hijacked"},
        content_type="application/json",
        headers={"If-Match": '"1"'},
    )
    assert refused.status_code == 404
    assert Product.objects.filter(pk=scene.coffee_product.pk).values().get() == coffee_before


def test_product_edits_need_the_current_version(scene: Scene) -> None:
    client = api(scene.staff_with_grant)
    url = f"/api/v1/staff/products/{scene.product.pk}/"
    assert client.patch(url, {"name": "A"}, content_type="application/json").status_code == 428
    first = client.patch(url, {"name": "A"}, content_type="application/json", headers={"If-Match": '"1"'})
    assert first.status_code == 200
    # Lost update: a second manager still holding version 1 is refused, and the first edit survives.
    stale = client.patch(url, {"name": "B"}, content_type="application/json", headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    assert Product.objects.get(pk=scene.product.pk).name == "A"


def test_revoking_a_category_grant_closes_its_products_at_once(scene: Scene) -> None:
    client = api(scene.staff_with_grant)
    remove_perm(MANAGE_CATEGORY, scene.staff_with_grant, scene.tea)
    response = client.patch(
        f"/api/v1/staff/products/{scene.product.pk}/",
        {"name": "Too late"},
        content_type="application/json",
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 404
    assert Product.objects.get(pk=scene.product.pk).version == 1


def test_the_service_checks_the_grant_itself(scene: Scene) -> None:
    """Defense in depth: product_update refuses an editor without the grant whoever calls it (a task, a shell,
    a future view that forgot the scoped lookup), and checks the category the row has *now*."""
    with pytest.raises(NotFound):
        product_update(
            editor=scene.staff_without_grant,
            product_id=scene.product.pk,
            expected_version=1,
            changes=ProductChanges(price=Decimal("0.01")),
        )
    Product.objects.filter(pk=scene.product.pk).update(category=scene.coffee)  # moved out of greta's reach
    with pytest.raises(NotFound):
        product_update(
            editor=scene.staff_with_grant,
            product_id=scene.product.pk,
            expected_version=1,
            changes=ProductChanges(price=Decimal("0.01")),
        )
    assert Product.objects.get(pk=scene.product.pk).price == Decimal("12.50")


def test_the_staff_product_page_saves_with_the_version_and_refuses_a_stale_form(scene: Scene) -> None:
    client = web(scene.staff_with_grant)
    url = reverse("staff:product", kwargs={"pk": scene.product.pk})
    form = {"name": "Sencha", "description": "", "price": "12.00", "is_active": "on", "version": 1}
    assert client.post(url, form).status_code == 303
    stale = client.post(url, {**form, "price": "11.00"})
    assert stale.status_code == 409
    assert "changed since you read it" in stale.content.decode()
    assert Product.objects.get(pk=scene.product.pk).price == Decimal("12.00")


def test_the_staff_api_is_its_own_section_of_the_openapi_document() -> None:
    import yaml

    schema = yaml.safe_load(Client().get("/api/v1/schema/").content)
    staff_paths = {path: item for path, item in schema["paths"].items() if path.startswith("/api/v1/staff/")}
    assert set(staff_paths) == {
        "/api/v1/staff/orders/",
        "/api/v1/staff/orders/{order_id}/",
        "/api/v1/staff/orders/{order_id}/fulfil/",
        "/api/v1/staff/products/",
        "/api/v1/staff/products/{product_id}/",
    }
    for item in staff_paths.values():
        for operation in item.values():
            assert operation["tags"] == ["staff"]
