"""ANTI-PATTERN on purpose (workshop twin of N+1 queries); the fix lives in shop/selectors.py and shop/apis.py.

A product list as a quick code generator writes it: fast with 10 rows, slow with 10,000. Compare it with
`product_list` in shop/selectors.py, `ProductListApi` in shop/apis.py and `CursorPagination` in
core/pagination.py (side by side on /workshop/). Never imported by the real shop.
Fix-it track: make this file hold under `make workshop-check MODE=n-plus-one`.
"""

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from shop.models import Product


@login_not_required
@require_GET
def product_list(request):
    products = Product.objects.filter(is_active=True)
    if request.GET.get("category"):
        products = products.filter(category__slug=request.GET["category"])

    results = []
    for product in products.order_by("id"):
        # Always show the live stock, never a stale number
        stock = Product.objects.values_list("stock_on_hand", flat=True).get(id=product.id)
        results.append(
            {
                "id": product.id,
                "sku": product.sku,
                "name": product.name,
                "price": str(product.price),
                "stock_available": stock,
                "category": {"slug": product.category.slug, "name": product.category.name},
            }
        )
    return JsonResponse({"count": len(results), "results": results})
