"""Order reads. Every query is scoped to who asks, and states its shape so its cost never grows with data."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from accounts.models import User
from core.errors import NotFound
from orders.models import Order, OrderLine


def _with_lines(queryset: QuerySet[Order]) -> QuerySet[Order]:
    # N+1: lines arrive in one extra query for the whole page, not one per order.
    return queryset.select_related("fulfilment_centre").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("id"))
    )


def order_queryset_for_customer(*, customer: User) -> QuerySet[Order]:
    # Broken object-level authorization: every lookup starts from the caller's own orders.
    return _with_lines(Order.objects.filter(customer=customer))


def order_list_for_customer(*, customer: User, status: str | None = None) -> QuerySet[Order]:
    queryset = order_queryset_for_customer(customer=customer)
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-id")


def order_get_for_customer(*, customer: User, order_id: int) -> Order:
    order = order_queryset_for_customer(customer=customer).filter(pk=order_id).first()
    if order is None:
        # Probing: another customer's order id looks exactly like one that does not exist.
        raise NotFound("No such order.")
    return order


def order_status_get_for_customer(*, customer: User, order_id: int) -> Order:
    """Only what the live-status poll shows (status, version): one small query, no lines. Every open order
    page polls this every few seconds, so it carries none of the detail page's weight."""
    order = Order.objects.filter(customer=customer, pk=order_id).only("id", "status", "version").first()
    if order is None:
        raise NotFound("No such order.")
    return order
