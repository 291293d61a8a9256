"""Staff reads, scoped by object permissions (django-guardian).

A staff member is not "allowed to see orders"; they are allowed to see the orders of the fulfilment centres
they were granted, and to edit the products of the categories they were granted. Every staff query starts
from the granted objects, so a list shows only those, and a detail lookup outside them is a 404.
"""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet
from guardian.shortcuts import get_objects_for_user

from accounts.models import User
from core.errors import NotFound
from core.permissions import FULFIL_CENTRE_ORDERS, MANAGE_CATEGORY_PRODUCTS
from orders.models import FulfilmentCentre, Order, OrderLine, OrderStatus
from shop.models import Category, Product


def centres_granted(*, user: User) -> QuerySet[FulfilmentCentre]:
    # Grants are per object, to the user or one of their groups. A model-wide permission does not open every
    # centre (accept_global_perms=False); only a superuser sees all.
    return get_objects_for_user(user, FULFIL_CENTRE_ORDERS, klass=FulfilmentCentre, accept_global_perms=False)


def categories_granted(*, user: User) -> QuerySet[Category]:
    return get_objects_for_user(user, MANAGE_CATEGORY_PRODUCTS, klass=Category, accept_global_perms=False)


def order_queryset_for_fulfilment(*, user: User) -> QuerySet[Order]:
    # Broken object-level authorization: every staff order lookup starts from the granted centres
    # (one subquery, evaluated on every request: a revoked grant closes access at once).
    return (
        Order.objects.filter(fulfilment_centre__in=centres_granted(user=user))
        # N+1: centre in the JOIN, lines in one extra query per page.
        .select_related("fulfilment_centre")
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("id")))
    )


def order_list_for_fulfilment(
    *, user: User, status: str | None = None, centre_code: str | None = None
) -> QuerySet[Order]:
    queryset = order_queryset_for_fulfilment(user=user)
    if status:
        queryset = queryset.filter(status=status)
    if centre_code:
        queryset = queryset.filter(fulfilment_centre__code=centre_code)
    return queryset.order_by("-id")


def order_get_for_fulfilment(*, user: User, order_id: int) -> Order:
    order = order_queryset_for_fulfilment(user=user).filter(pk=order_id).first()
    if order is None:
        # Probing: an order of a centre you were not granted looks exactly like one that does not exist.
        raise NotFound("No such order.")
    return order


def fulfilment_queue_counts(*, user: User) -> dict[str, int]:
    """Paid orders waiting to ship, per granted centre (one grouped query)."""
    rows = (
        order_queryset_for_fulfilment(user=user)
        .filter(status=OrderStatus.PAID)
        .values("fulfilment_centre__name")
        .annotate(waiting=Count("id"))
        .order_by("fulfilment_centre__name")
    )
    return {row["fulfilment_centre__name"]: row["waiting"] for row in rows}


def product_queryset_for_catalog(*, user: User) -> QuerySet[Product]:
    # Broken object-level authorization: a catalog manager's products are those of the granted categories.
    return Product.objects.filter(category__in=categories_granted(user=user)).select_related("category")


def product_list_for_catalog(*, user: User, category_slug: str | None = None) -> QuerySet[Product]:
    queryset = product_queryset_for_catalog(user=user)
    if category_slug:
        queryset = queryset.filter(category__slug=category_slug)
    return queryset.order_by("id")


def product_get_for_catalog(*, user: User, product_id: int) -> Product:
    product = product_queryset_for_catalog(user=user).filter(pk=product_id).first()
    if product is None:
        raise NotFound("No such product.")
    return product
