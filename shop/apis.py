"""Catalog API: anonymous read access, opted into per view (the default is authenticated)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import CursorPagination
from core.rendering import render_json, rendered_json_response
from core.serializers import StrictInputSerializer
from shop.catalog_cache import catalog_cached
from shop.selectors import category_list, product_get, product_list
from shop.serializers import CategoryOutputSerializer, ProductOutputSerializer


class CategoryPagination(CursorPagination):
    ordering = "slug"


class ProductPagination(CursorPagination):
    ordering = "id"


class CategoryListApi(APIView):
    permission_classes = [AllowAny]
    pagination_class = CategoryPagination

    @extend_schema(responses=CategoryOutputSerializer(many=True), tags=["catalog"])
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(category_list(), request, view=self)
        return paginator.get_paginated_response(CategoryOutputSerializer(page, many=True).data)


# What the product list reads from the query string: its filters and the paginator's cursor and page size.
LIST_PARAMETERS = frozenset({"category", "q", "cursor", "page_size"})


class ProductListApi(APIView):
    permission_classes = [AllowAny]
    pagination_class = ProductPagination

    class FilterSerializer(StrictInputSerializer):
        category = serializers.SlugField(
            required=False, allow_blank=True, max_length=100, trim_whitespace=False, help_text="Category slug"
        )
        q = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=100,
            help_text="Text search in the product name, or an exact SKU",
        )

    @extend_schema(parameters=[FilterSerializer], responses=ProductOutputSerializer(many=True), tags=["catalog"])
    def get(self, request: Request) -> HttpResponse:
        def page_of_products() -> bytes:
            # Validated here, on a miss only: a URL in the cache was valid when it was answered (errors are
            # never kept), so a hit skips the filter serializer as well as the query and the serialization.
            filters = self.FilterSerializer(data=request.query_params)
            filters.is_valid(raise_exception=True)
            products = product_list(
                category_slug=filters.validated_data.get("category") or None,
                search=filters.validated_data.get("q") or None,
            )
            paginator = self.pagination_class()
            page = paginator.paginate_queryset(products, request, view=self)
            return render_json(paginator.get_paginated_response(ProductOutputSerializer(page, many=True).data).data)

        if set(request.query_params) - LIST_PARAMETERS:
            # Cache flushing: a parameter the list ignores (`?x=<random>`) would make every request a new key and
            # push the real pages out of the bounded cache. Such a request is answered, just never kept.
            return rendered_json_response(page_of_products())
        # The full URL is the key: it names the page, and the next/previous links in the answer are built from it.
        # The answer is kept rendered: a hit sends the bytes it sent the first time (core/rendering.py).
        return rendered_json_response(catalog_cached(("products", request.build_absolute_uri()), page_of_products))


class ProductDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=ProductOutputSerializer, tags=["catalog"])
    def get(self, request: Request, product_id: int) -> HttpResponse:
        def product() -> bytes:
            return render_json(ProductOutputSerializer(product_get(product_id=product_id)).data)

        return rendered_json_response(catalog_cached(("product", product_id), product))
