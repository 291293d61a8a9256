"""A deliberately naive endpoint, routed only in tests/queries/test_n_plus_one_detection.py.

It renders orders the way quickly built apps do: one query for the orders, then one more per order for its
lines. The test proves that django-zeal fails the request.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.urls import path

from orders.models import Order


@login_not_required
def naive_order_lines(request: HttpRequest) -> JsonResponse:
    orders = Order.objects.order_by("-id")[:20]
    return JsonResponse({"orders": [[line.sku for line in order.lines.all()] for order in orders]})


urlpatterns = [path("naive-orders/", naive_order_lines)]
