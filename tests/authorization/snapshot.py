"""Before/after pictures of every row an authorization mistake could change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import Group
from django.db.models import Model
from guardian.models import GroupObjectPermission, UserObjectPermission
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts.models import User
from cart.models import Cart, CartItem
from idempotency.models import IdempotencyKey
from mail.models import OutboxMessage
from orders.models import FulfilmentCentre, Order, OrderLine
from payments.models import Payment
from shop.models import Category, Product

WATCHED: list[type[Model]] = [
    Order,
    OrderLine,
    Payment,
    Product,
    Category,
    FulfilmentCentre,
    Cart,
    CartItem,
    IdempotencyKey,
    # Mail: a denied request (or a GET) must not promise anybody a message.
    OutboxMessage,
    BlacklistedToken,
    Group,
    UserObjectPermission,
    GroupObjectPermission,
]
USER_FIELDS = ("id", "username", "email", "verified_email", "password", "is_staff", "is_superuser", "is_active")


def database_snapshot() -> dict[str, list[dict[str, Any]]]:
    picture = {model._meta.label: list(model._default_manager.order_by("pk").values()) for model in WATCHED}
    picture["accounts.User"] = list(User.objects.order_by("pk").values(*USER_FIELDS))
    return picture


def changed_tables(before: Mapping[str, list[Any]], after: Mapping[str, list[Any]]) -> list[str]:
    return [label for label in before if before[label] != after[label]]


def owner_rows(owner: User) -> dict[str, list[Any]]:
    """Everything that belongs to one customer: nobody else's request may change any of it."""
    return {
        "orders": list(Order.objects.filter(customer=owner).order_by("pk").values()),
        "order lines": list(OrderLine.objects.filter(order__customer=owner).order_by("pk").values()),
        "cart items": list(CartItem.objects.filter(cart__user=owner).order_by("pk").values()),
        "account": list(User.objects.filter(pk=owner.pk).values(*USER_FIELDS)),
    }
