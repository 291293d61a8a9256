"""Catalog reads with stated query shapes: one query per page, whatever the catalog size."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from core.errors import NotFound
from shop.models import Category, Product

PRODUCT_LIST_FIELDS = (
    "id",
    "sku",
    "name",
    "slug",
    "description",
    "price",
    "currency",
    "stock_on_hand",
    "category__slug",
    "category__name",
)


def category_list() -> QuerySet[Category]:
    return Category.objects.order_by("name", "id")


def category_get(*, slug: str) -> Category:
    category = Category.objects.filter(slug=slug).first()
    if category is None:
        raise NotFound("No such category.")
    return category


def product_list(*, category_slug: str | None = None, search: str | None = None) -> QuerySet[Product]:
    # N+1: the category comes in the same query (JOIN), never one query per product.
    queryset = Product.objects.filter(is_active=True).select_related("category").only(*PRODUCT_LIST_FIELDS)
    if category_slug:
        queryset = queryset.filter(category__slug=category_slug)
    if search:
        queryset = queryset.filter(Q(name__icontains=search) | Q(sku__iexact=search))
    return queryset


def product_get(*, product_id: int | None = None, slug: str | None = None) -> Product:
    queryset = Product.objects.filter(is_active=True).select_related("category")
    product = queryset.filter(pk=product_id).first() if product_id is not None else queryset.filter(slug=slug).first()
    if product is None:
        raise NotFound("No such product.")
    return product
