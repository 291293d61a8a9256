"""Catalog pages: home, category, search, product. Thin: call a selector, render a template."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.web import paginate
from shop.selectors import category_get, category_menu, product_get, product_list

PRODUCTS_PER_PAGE = 12
FEATURED_COUNT = 8
MAX_SEARCH_LENGTH = 100


@login_not_required  # Public catalog: opted out of deny-by-default (LoginRequiredMiddleware).
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "shop/home.html",
        {"categories": category_menu(), "featured": product_list()[:FEATURED_COUNT]},
    )


@login_not_required
def category_detail(request: HttpRequest, slug: str) -> HttpResponse:
    category = category_get(slug=slug)  # NotFound is the 404 page
    page = paginate(request, product_list(category_slug=category.slug), per_page=PRODUCTS_PER_PAGE)
    return render(
        request,
        "shop/product_list.html",
        {"category": category, "categories": category_menu(), "page": page, "heading": category.name},
    )


@login_not_required
def search(request: HttpRequest) -> HttpResponse:
    # Bad input: an absurdly long query is cut, not sent to the database as is.
    query = request.GET.get("q", "").strip()[:MAX_SEARCH_LENGTH]
    page = paginate(request, product_list(search=query), per_page=PRODUCTS_PER_PAGE) if query else None
    return render(
        request,
        "shop/product_list.html",
        {
            "query": query,
            "categories": category_menu(),
            "page": page,
            "heading": f"Results for “{query}”" if query else "Search",
        },
    )


@login_not_required
def product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    product = product_get(slug=slug)  # NotFound is the 404 page
    # The buy form and the quantity in the cart come from the cart's template tags (cart/templatetags/).
    return render(
        request,
        "shop/product_detail.html",
        {
            "product": product,
            "max_quantity": min(settings.ORDER_MAX_QUANTITY_PER_LINE, max(product.stock_on_hand, 1)),
        },
    )
