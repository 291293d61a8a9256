"""Catalog reads with stated query shapes: the cost of a page never depends on the size of the catalog.

Every list here is a lazy QuerySet that the caller pages (cursor pagination in the API, a Paginator in HTML);
each one has the index its filter and ordering need (shop/models.py, migrations 0002 and 0003).
"""

from __future__ import annotations

from django.db.models import Q, QuerySet, Subquery

from core.errors import NotFound
from shop.models import Category, Product

# The columns a product card or an API product needs; the category comes in the same row (JOIN).
PRODUCT_LIST_FIELDS = (
    "id",
    "sku",
    "name",
    "slug",
    "description",
    "price",
    "currency",
    "stock_on_hand",
    "is_active",
    "category__id",
    "category__slug",
    "category__name",
)

CATEGORY_MENU_LIMIT = 50

# The order shoppers see (HTML pages). The API pages by id instead (shop/apis.py); both have an index.
CATALOG_ORDERING = ("name", "id")


def category_list() -> QuerySet[Category]:
    # A handful of rows; the API pages it anyway so that no list is unbounded.
    return Category.objects.order_by("name", "id")


def category_menu() -> QuerySet[Category]:
    """The category links in the shop's pages: a bounded slice, however many categories get created."""
    return category_list()[:CATEGORY_MENU_LIMIT]


def category_get(*, slug: str) -> Category:
    category = Category.objects.filter(slug=slug).first()
    if category is None:
        raise NotFound("No such category.")
    return category


def product_list(*, category_slug: str | None = None, search: str | None = None) -> QuerySet[Product]:
    """Active products, ordered for shoppers (name, id). One query per page, whatever the catalog size."""
    queryset = (
        Product.objects.filter(is_active=True)
        .select_related("category")  # N+1: the category comes in the same query (JOIN), never one per product
        .only(*PRODUCT_LIST_FIELDS)  # the card's columns, not every column
        .order_by(*CATALOG_ORDERING)  # ("name", "id"): index (is_active, name, id)
    )
    if category_slug:
        # Growing sort: compare category_id with a scalar subquery, not a JOIN on the slug, so PostgreSQL reads
        # the (is_active, category, ...) index in order and stops after one page instead of sorting the category.
        category_id = Category.objects.filter(slug=category_slug).order_by().values("id")[:1]
        queryset = queryset.filter(category_id=Subquery(category_id))
    if search:
        # Full scan: served by the trigram index on UPPER(name) and the UPPER(sku) index (migration 0002).
        queryset = queryset.filter(Q(name__icontains=search) | Q(sku__iexact=search))
    return queryset


def product_get(*, product_id: int | None = None, slug: str | None = None) -> Product:
    """One active product with its category, in one query."""
    queryset = Product.objects.filter(is_active=True).select_related("category")
    product = queryset.filter(pk=product_id).first() if product_id is not None else queryset.filter(slug=slug).first()
    if product is None:
        raise NotFound("No such product.")
    return product
