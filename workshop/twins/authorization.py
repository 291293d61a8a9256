"""ANTI-PATTERN on purpose (workshop twin of authentication without authorization); the fix: orders/selectors.py.

Order detail and edit as a quick code generator writes them: signed in is checked, ownership is not. Compare it
with `order_queryset_for_customer` and `order_get_for_customer` in orders/selectors.py and `OrderDetailApi` in
orders/apis.py (side by side on /workshop/). Never imported by the real shop.
Fix-it track: make this file hold under `make workshop-check MODE=authorization`.
"""

from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from orders.models import Order


class OrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = "__all__"


@api_view(["GET", "PATCH"])
def order_detail(request, order_id):
    order = get_object_or_404(Order, id=order_id)
    if request.method == "PATCH":
        serializer = OrderSerializer(order, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
    return Response(OrderSerializer(order).data)
