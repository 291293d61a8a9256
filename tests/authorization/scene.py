"""The world the authorization tests run in: five named actors and the objects they do or do not own.

    alice    owner                customer; owns `order` (Berlin, pending payment), `paid_order` (Berlin, paid),
                                  a cart with `cart_item`
    bob      other_customer       customer; owns `bob_order` (Rotterdam)
    sam      staff_without_grant  is_staff; granted the Rotterdam centre (group) and the Coffee category
    greta    staff_with_grant     is_staff; granted the Berlin centre (via the "Fulfilment Berlin" group)
                                  and the Tea category (directly)

`product` is in Tea, `coffee_product` in Coffee. Every secret of alice's (order numbers, address, e-mail)
is listed in `owner_secrets`, so a test can assert that none of them reached another actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group
from django.db import connection, transaction
from guardian.shortcuts import assign_perm
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from cart.models import Cart, CartItem
from core.permissions import FULFIL_CENTRE_ORDERS, MANAGE_CATEGORY_PRODUCTS
from mail.models import OutboxMessage
from orders.models import FulfilmentCentre, Order, OrderLine, OrderStatus
from shop.models import Category, Product
from tests.authorization.policy import ANONYMOUS, OTHER_CUSTOMER, OWNER, STAFF_WITH_GRANT, STAFF_WITHOUT_GRANT
from tests.factories import TEST_PASSWORD, CategoryFactory, FulfilmentCentreFactory, ProductFactory, UserFactory

FULFIL = FULFIL_CENTRE_ORDERS
MANAGE_CATEGORY = MANAGE_CATEGORY_PRODUCTS


def make_order(
    *,
    customer: User,
    centre: FulfilmentCentre,
    product: Product,
    status: str = OrderStatus.PENDING_PAYMENT,
    shipping_name: str = "A. Buyer",
    line1: str = "1 Main St",
) -> Order:
    order = Order.objects.create(
        customer=customer,
        fulfilment_centre=centre,
        status=status,
        currency="EUR",
        total=product.price,
        idempotency_key=f"scene-{customer.username}-{shipping_name}-{status}",
        shipping_name=shipping_name,
        shipping_line1=line1,
        shipping_city="Berlin",
        shipping_postal_code="10115",
        shipping_country="DE",
    )
    order.number = f"SO-{order.pk:06d}"
    order.save(update_fields=["number"])
    OrderLine.objects.create(
        order=order,
        product=product,
        sku=product.sku,
        name=product.name,
        unit_price=product.price,
        quantity=1,
        line_total=product.price,
    )
    return order


@dataclass
class Scene:
    owner: User
    other_customer: User
    staff_without_grant: User
    staff_with_grant: User
    berlin: FulfilmentCentre
    rotterdam: FulfilmentCentre
    tea: Category
    coffee: Category
    product: Product
    coffee_product: Product
    order: Order
    paid_order: Order
    bob_order: Order
    cart_item: CartItem
    berlin_group: Group
    password: str = TEST_PASSWORD
    me: User | None = None  # the actor of the current request (None: anonymous)

    @property
    def centre(self) -> FulfilmentCentre:
        return self.berlin

    @property
    def category(self) -> Category:
        return self.tea

    @property
    def owner_refresh(self) -> str:
        return str(RefreshToken.for_user(self.owner))

    def actor(self, name: str) -> User | None:
        return {
            ANONYMOUS: None,
            OWNER: self.owner,
            OTHER_CUSTOMER: self.other_customer,
            STAFF_WITHOUT_GRANT: self.staff_without_grant,
            STAFF_WITH_GRANT: self.staff_with_grant,
        }[name]

    def obj(self, name: str) -> Any:
        return getattr(self, name)

    def owner_secrets(self) -> list[str]:
        """Strings only alice (and staff granted her order's centre) may ever see."""
        return [
            str(self.order.number),
            str(self.paid_order.number),
            self.order.shipping_name,
            self.order.shipping_line1,
            self.owner.email,
        ]


def build_scene() -> Scene:
    berlin = FulfilmentCentreFactory.create(code="berlin", name="Berlin", country_codes="DE AT", is_default=True)
    rotterdam = FulfilmentCentreFactory.create(code="rotterdam", name="Rotterdam", country_codes="NL BE")
    tea = CategoryFactory.create(slug="tea", name="Tea")
    coffee = CategoryFactory.create(slug="coffee", name="Coffee")
    # Stock conservation (received = on hand + sold): alice's two orders hold one Sencha each, bob's one coffee.
    product = ProductFactory.create(category=tea, price=Decimal("12.50"), stock_on_hand=50, stock_received=52)
    coffee_product = ProductFactory.create(category=coffee, price=Decimal("14.00"), stock_on_hand=50, stock_received=51)

    alice = UserFactory.create(username="alice", email="alice.private@example.com")
    bob = UserFactory.create(username="bob")
    sam = UserFactory.create(username="sam", is_staff=True)
    greta = UserFactory.create(username="greta", is_staff=True)

    berlin_group = Group.objects.create(name="Fulfilment Berlin")
    rotterdam_group = Group.objects.create(name="Fulfilment Rotterdam")
    # Grants are on objects, not on the model: greta ships Berlin only, sam Rotterdam only.
    assign_perm(FULFIL, berlin_group, berlin)
    assign_perm(FULFIL, rotterdam_group, rotterdam)
    greta.groups.add(berlin_group)
    sam.groups.add(rotterdam_group)
    assign_perm(MANAGE_CATEGORY, greta, tea)
    assign_perm(MANAGE_CATEGORY, sam, coffee)

    order = make_order(
        customer=alice, centre=berlin, product=product, shipping_name="Alice Private", line1="7 Secret Garden"
    )
    paid_order = make_order(
        customer=alice,
        centre=berlin,
        product=product,
        status=OrderStatus.PAID,
        shipping_name="Alice Private",
        line1="7 Secret Garden",
    )
    bob_order = make_order(customer=bob, centre=rotterdam, product=coffee_product, shipping_name="Bob Elsewhere")
    cart = Cart.objects.create(user=alice)
    cart_item = CartItem.objects.create(cart=cart, product=product, quantity=2)
    return Scene(
        owner=alice,
        other_customer=bob,
        staff_without_grant=sam,
        staff_with_grant=greta,
        berlin=berlin,
        rotterdam=rotterdam,
        tea=tea,
        coffee=coffee,
        product=product,
        coffee_product=coffee_product,
        order=order,
        paid_order=paid_order,
        bob_order=bob_order,
        cart_item=cart_item,
        berlin_group=berlin_group,
    )


def delete_scene(scene: Scene) -> None:
    """Remove a scene that was committed outside a test transaction (the matrix shares one per module)."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Clean-up on a busy shared machine: the role's 5 s statement_timeout is for requests, not for this.
        cursor.execute("SET LOCAL statement_timeout = '60s'")
        _delete_scene_rows(scene)


def _delete_scene_rows(scene: Scene) -> None:
    users = [scene.owner, scene.other_customer, scene.staff_without_grant, scene.staff_with_grant]
    OrderLine.objects.filter(order__customer__in=users).delete()
    OutboxMessage.objects.filter(order__customer__in=users).delete()  # order mail protects its order
    Order.objects.filter(customer__in=users).delete()
    Cart.objects.filter(user__in=users).delete()
    Product.objects.filter(pk__in=[scene.product.pk, scene.coffee_product.pk]).delete()
    Category.objects.filter(pk__in=[scene.tea.pk, scene.coffee.pk]).delete()
    FulfilmentCentre.objects.filter(pk__in=[scene.berlin.pk, scene.rotterdam.pk]).delete()
    # Object permissions go with their users and groups (foreign keys, CASCADE).
    Group.objects.filter(name__in=["Fulfilment Berlin", "Fulfilment Rotterdam"]).delete()
    User.objects.filter(pk__in=[user.pk for user in users]).delete()
