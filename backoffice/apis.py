"""The staff API (/api/v1/staff/...). Thin: check the section (IsStaff), call one scoped selector or service.

Fulfilment staff see and ship the orders of the centres they were granted; catalog managers read and edit
the products of the categories they were granted. Anything outside the grants answers 404.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice.permissions import IsStaff
from backoffice.selectors import (
    order_get_for_fulfilment,
    order_list_for_fulfilment,
    product_get_for_catalog,
    product_list_for_catalog,
)
from backoffice.services import staff_order_fulfil
from core.auth import request_user
from core.etags import parse_if_match
from core.openapi import ETAG, IF_MATCH
from core.pagination import CursorPagination
from core.serializers import StrictInputSerializer
from orders.models import OrderStatus
from orders.serializers import OrderOutputSerializer
from shop.models import Product
from shop.services import ProductChanges, product_update

STAFF_TAG = "staff"


class StaffOrderOutputSerializer(OrderOutputSerializer):
    """What a packer needs: the customer's view of the order plus its centre. Not account or payment data."""

    fulfilment_centre = serializers.CharField(source="fulfilment_centre.code", read_only=True, allow_null=True)

    class Meta(OrderOutputSerializer.Meta):
        fields = [*OrderOutputSerializer.Meta.fields, "fulfilment_centre"]
        read_only_fields = fields


class StaffProductOutputSerializer(serializers.ModelSerializer[Product]):
    category = serializers.CharField(source="category.slug", read_only=True)

    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "name",
            "slug",
            "description",
            "price",
            "currency",
            "is_active",
            "stock_on_hand",
            "category",
            "version",
            "updated_at",
        ]
        read_only_fields = fields


class StaffProductPagination(CursorPagination):
    ordering = "id"


class StaffOrderListApi(APIView):
    permission_classes = [IsStaff]
    pagination_class = CursorPagination  # newest first (-id), as the base orders

    class StaffOrderFilterSerializer(StrictInputSerializer):
        status = serializers.ChoiceField(choices=OrderStatus.choices, required=False, help_text="Only this status")
        centre = serializers.SlugField(
            required=False,
            max_length=20,
            trim_whitespace=False,
            help_text="Fulfilment centre code (only granted centres match)",
        )

    @extend_schema(
        parameters=[StaffOrderFilterSerializer],
        responses=StaffOrderOutputSerializer(many=True),
        tags=[STAFF_TAG],
        summary="Orders of the fulfilment centres granted to you",
    )
    def get(self, request: Request) -> Response:
        filters = self.StaffOrderFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        orders = order_list_for_fulfilment(
            user=request_user(request),
            status=filters.validated_data.get("status"),
            centre_code=filters.validated_data.get("centre"),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(StaffOrderOutputSerializer(page, many=True).data)


class StaffOrderDetailApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        responses=StaffOrderOutputSerializer,
        parameters=[ETAG],
        tags=[STAFF_TAG],
        summary="One order of a granted centre",
    )
    def get(self, request: Request, order_id: int) -> Response:
        order = order_get_for_fulfilment(user=request_user(request), order_id=order_id)
        return Response(StaffOrderOutputSerializer(order).data, headers={"ETag": order.etag})


class StaffOrderFulfilApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        request=None,
        responses=StaffOrderOutputSerializer,
        parameters=[ETAG],
        tags=[STAFF_TAG],
        summary="Mark a paid order of a granted centre as shipped (409 when it is not paid)",
    )
    def post(self, request: Request, order_id: int) -> Response:
        user = request_user(request)
        shipped = staff_order_fulfil(user=user, order_id=order_id)
        order = order_get_for_fulfilment(user=user, order_id=shipped.pk)
        return Response(StaffOrderOutputSerializer(order).data, headers={"ETag": order.etag})


class StaffProductListApi(APIView):
    permission_classes = [IsStaff]
    pagination_class = StaffProductPagination

    class StaffProductFilterSerializer(StrictInputSerializer):
        category = serializers.SlugField(
            required=False, max_length=100, trim_whitespace=False, help_text="Category slug (only granted ones match)"
        )

    @extend_schema(
        parameters=[StaffProductFilterSerializer],
        responses=StaffProductOutputSerializer(many=True),
        tags=[STAFF_TAG],
        summary="Products of the categories granted to you (including inactive ones)",
    )
    def get(self, request: Request) -> Response:
        filters = self.StaffProductFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        products = product_list_for_catalog(
            user=request_user(request), category_slug=filters.validated_data.get("category")
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(products, request, view=self)
        return paginator.get_paginated_response(StaffProductOutputSerializer(page, many=True).data)


class StaffProductDetailApi(APIView):
    permission_classes = [IsStaff]

    class StaffProductUpdateInputSerializer(StrictInputSerializer):
        # Mass assignment: the allow-list. stock_on_hand, sku, category and version in the body are ignored.
        name = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
        price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0, required=False)
        is_active = serializers.BooleanField(required=False)

    @extend_schema(
        responses=StaffProductOutputSerializer,
        parameters=[ETAG],
        tags=[STAFF_TAG],
        summary="One product of a granted category",
    )
    def get(self, request: Request, product_id: int) -> Response:
        product = product_get_for_catalog(user=request_user(request), product_id=product_id)
        return Response(StaffProductOutputSerializer(product).data, headers={"ETag": product.etag})

    @extend_schema(
        request=StaffProductUpdateInputSerializer,
        responses=StaffProductOutputSerializer,
        parameters=[IF_MATCH, ETAG],
        tags=[STAFF_TAG],
        summary="Edit a product of a granted category (If-Match: the ETag you read; 412 when stale)",
    )
    def patch(self, request: Request, product_id: int) -> Response:
        user = request_user(request)
        # Object check first: outside your categories the product does not exist, whatever else is wrong.
        product_get_for_catalog(user=user, product_id=product_id)
        # A malformed edit is 400 whatever its If-Match says (RFC 9110 13.2.1), as on the order API.
        payload = self.StaffProductUpdateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        expected_version = parse_if_match(request.headers.get("If-Match"))
        updated = product_update(
            editor=user,
            product_id=product_id,
            expected_version=expected_version,
            changes=ProductChanges(**payload.validated_data),
        )
        return Response(StaffProductOutputSerializer(updated).data, headers={"ETag": updated.etag})
