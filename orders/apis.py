"""Order API for customers. Thin: parse, call one service or selector, render."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import request_user
from core.etags import parse_if_match
from core.openapi import ETAG, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, IF_MATCH, LOCATION
from core.pagination import CursorPagination
from core.rendering import render_json
from core.serializers import StrictInputSerializer
from idempotency.http import IdempotentRequest, idempotent, json_answer
from orders.models import Order, OrderStatus
from orders.placement import order_place
from orders.selectors import order_get_for_customer, order_list_for_customer
from orders.serializers import OrderCreateInputSerializer, OrderOutputSerializer, OrderUpdateInputSerializer
from orders.services import order_cancel, order_update_details


def _order_json(order: Order) -> bytes:
    return render_json(OrderOutputSerializer(order).data)


def _order_response(order: Order, *, status: int = 200) -> Response:
    return Response(OrderOutputSerializer(order).data, status=status, headers={"ETag": order.etag})


class OrderListCreateApi(APIView):
    pagination_class = CursorPagination  # newest first (-id), as the base orders

    class FilterSerializer(StrictInputSerializer):
        status = serializers.ChoiceField(choices=OrderStatus.choices, required=False, help_text="Only this status")

    @extend_schema(parameters=[FilterSerializer], responses=OrderOutputSerializer(many=True), tags=["orders"])
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        orders = order_list_for_customer(customer=request_user(request), status=filters.validated_data.get("status"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(OrderOutputSerializer(page, many=True).data)

    @extend_schema(
        request=OrderCreateInputSerializer,
        responses={201: OrderOutputSerializer},
        parameters=[IDEMPOTENCY_KEY, ETAG, LOCATION, IDEMPOTENT_REPLAYED],
        tags=["orders"],
    )
    @idempotent
    def post(self, request: Request, idempotency: IdempotentRequest) -> HttpResponse:
        payload = OrderCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        placement = order_place(
            customer=request_user(request),
            lines=payload.line_requests(),
            shipping_address=payload.shipping(),
            note=payload.validated_data["note"],
            idempotency_key=idempotency.key,
            fingerprint=idempotency.fingerprint,
        )
        order = placement.order
        # Reused key after the retention window: the key record was purged, but the order remembers the request
        # that placed it; the same request is a replay of that order, and says so, never a silent 201.
        return json_answer(
            _order_json(order).decode(),
            status=201,
            headers={"ETag": order.etag, "Location": f"/api/v1/orders/{order.pk}/"},
            replayed=not placement.created,
        )


class OrderDetailApi(APIView):
    @extend_schema(responses=OrderOutputSerializer, parameters=[ETAG], tags=["orders"])
    def get(self, request: Request, order_id: int) -> Response:
        return _order_response(order_get_for_customer(customer=request_user(request), order_id=order_id))

    @extend_schema(
        request=OrderUpdateInputSerializer,
        responses=OrderOutputSerializer,
        parameters=[IF_MATCH, ETAG],
        tags=["orders"],
    )
    def patch(self, request: Request, order_id: int) -> Response:
        order = order_get_for_customer(customer=request_user(request), order_id=order_id)
        # A malformed request is 400 whatever its If-Match says (RFC 9110 13.2.1: preconditions are ignored
        # when the request would fail without them); only a valid edit is then checked against the ETag.
        payload = OrderUpdateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        expected_version = parse_if_match(request.headers.get("If-Match"))
        updated = order_update_details(
            order=order,
            expected_version=expected_version,
            shipping_address=payload.shipping(),
            note=payload.validated_data.get("note"),
        )
        return _order_response(order_get_for_customer(customer=request_user(request), order_id=updated.pk))


class OrderCancelApi(APIView):
    @extend_schema(request=None, responses=OrderOutputSerializer, parameters=[ETAG], tags=["orders"])
    def post(self, request: Request, order_id: int) -> Response:
        order = order_get_for_customer(customer=request_user(request), order_id=order_id)
        order_cancel(order=order)
        return _order_response(order_get_for_customer(customer=request_user(request), order_id=order.pk))
