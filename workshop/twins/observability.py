"""ANTI-PATTERN on purpose (workshop twin of no observability); the fix lives in orders/ and observability/.

Order placement as a quick code generator writes it when told "never show the customer an error". Compare it
with `check_order_lines` in orders/placement.py, `AccessLogMiddleware` in observability/middleware.py and
`check_orders_have_lines` in observability/invariants.py (side by side on /workshop/). Never imported by the
real shop. Fix-it track: make this file hold under `make workshop-check MODE=observability`.
"""

import uuid
from decimal import Decimal

from rest_framework.decorators import api_view
from rest_framework.response import Response

from orders.models import Order, OrderLine
from shop.models import Product


@api_view(["POST"])
def place_order(request):
    data = request.data
    address = data.get("shipping_address") or {}
    order = Order.objects.create(
        customer=request.user,
        total=Decimal("0.00"),
        idempotency_key=uuid.uuid4().hex,
        shipping_name=address.get("name", ""),
        shipping_line1=address.get("line1", ""),
        shipping_line2=address.get("line2", ""),
        shipping_city=address.get("city", ""),
        shipping_postal_code=address.get("postal_code", ""),
        shipping_country=address.get("country", "").upper(),
        note=data.get("note", ""),
    )

    total = Decimal("0.00")
    try:
        for item in data.get("lines", []):
            product = Product.objects.get(id=item["product_id"])
            quantity = int(item["quantity"])
            OrderLine.objects.create(
                order=order,
                product=product,
                sku=product.sku,
                name=product.name,
                unit_price=product.price,
                quantity=quantity,
                line_total=product.price * quantity,
            )
            product.stock_on_hand -= quantity
            product.save()
            total += product.price * quantity
    except Exception:  # noqa: S110
        pass  # never bother the customer with our problems

    order.number = f"SO-{order.id:06d}"
    order.total = total
    order.save()
    return Response({"id": order.id, "number": order.number, "status": "ok"}, status=201)
