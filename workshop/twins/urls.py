"""The twins' routes, under /workshop/twin/<mode>/, each behind the lab's fence (`workshop_data_only`).

The fence is not part of any twin (a twin is the app a generator wrote, unaware of the workshop): it only keeps
the anti-patterns inside the workshop's own tagged data. A signed-in account must be a workshop account
(ws-...), so a twin never writes for a real customer, and an order addressed by id must belong to a workshop
account, so the unscoped twin can only leak workshop orders, never a real customer's address.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from orders.models import Order
from workshop.twins import authorization, capacity, frontend_state, n_plus_one, observability, races

WORKSHOP_ACCOUNT_PREFIX = "ws-"


def _caller_username(request: HttpRequest) -> str | None:
    if request.user.is_authenticated:
        return str(request.user.get_username())
    try:
        found = JWTAuthentication().authenticate(request)  # type: ignore[arg-type]
    except (InvalidToken, TokenError):
        return None  # the twin's own authentication answers 401
    return str(found[0].get_username()) if found else None


def workshop_data_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def fenced(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = _caller_username(request)
        if username is not None and not username.startswith(WORKSHOP_ACCOUNT_PREFIX):
            return JsonResponse(
                {"detail": "Twins only act for workshop accounts (ws-...): use 'try it' on /workshop/."}, status=403
            )
        order_id = kwargs.get("order_id")
        if (
            order_id is not None
            and not Order.objects.filter(pk=order_id, customer__username__startswith=WORKSHOP_ACCOUNT_PREFIX).exists()
        ):
            return JsonResponse({"detail": "No such workshop order."}, status=404)
        return view(request, *args, **kwargs)

    return fenced


fence = workshop_data_only

urlpatterns = [
    path("races/orders/", fence(races.orders_api), name="twin-races-orders"),
    path("races/checkout/", fence(races.checkout_page), name="twin-races-checkout"),
    path("n-plus-one/products/", fence(n_plus_one.product_list), name="twin-n-plus-one-products"),
    path("capacity/checkout/", fence(capacity.checkout), name="twin-capacity-checkout"),
    path("authorization/orders/<int:order_id>/", fence(authorization.order_detail), name="twin-authorization-order"),
    path("frontend-state/orders/", fence(frontend_state.order_list), name="twin-frontend-state-orders"),
    path(
        "frontend-state/orders/<int:order_id>/edit/",
        fence(frontend_state.edit_order),
        name="twin-frontend-state-edit",
    ),
    path("observability/orders/", fence(observability.place_order), name="twin-observability-orders"),
]
