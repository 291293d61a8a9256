"""ANTI-PATTERN on purpose (workshop twin of no pooling/limits/breakers); the fix lives in payments/ and core/.

Checkout as a quick code generator writes it: a fresh connection straight to PostgreSQL per request, and the
card charged inline. Compare it with the DATABASES block in config/settings.py (PgBouncer), `provider_request` in
payments/client.py (timeouts, retries, breaker), `enqueue_payment_after_commit` in orders/placement.py and
`throttle_hit` in core/throttling.py (side by side on /workshop/). Never imported by the real shop.
Fix-it track: make this file hold under `make workshop-check MODE=capacity`.
"""

import json
import urllib.request
import uuid

import psycopg
from django.conf import settings
from rest_framework.decorators import api_view
from rest_framework.response import Response

from workshop.lab import postgres_url


@api_view(["POST"])
def checkout(request):
    conn = psycopg.connect(postgres_url())
    cur = conn.cursor()

    product_id = int(request.data["product_id"])
    quantity = int(request.data.get("quantity", 1))
    address = request.data.get("shipping_address") or {}

    cur.execute("SELECT price, stock_on_hand FROM shop_product WHERE id = %s", [product_id])
    price, stock = cur.fetchone()  # type: ignore[misc]
    if stock < quantity:
        return Response({"error": "Out of stock"}, status=400)
    total = price * quantity

    cur.execute(
        """INSERT INTO orders_order (customer_id, status, version, currency, total, idempotency_key,
                                     shipping_name, shipping_line1, shipping_line2, shipping_city,
                                     shipping_postal_code, shipping_country, note, created_at, updated_at)
           VALUES (%s, 'pending_payment', 1, 'EUR', %s, %s, %s, %s, '', %s, %s, %s, '', now(), now())
           RETURNING id""",
        [
            request.user.id,
            total,
            uuid.uuid4().hex,
            address.get("name", ""),
            address.get("line1", ""),
            address.get("city", ""),
            address.get("postal_code", ""),
            address.get("country", "DE"),
        ],
    )
    order_id = cur.fetchone()[0]  # type: ignore[index]
    cur.execute(
        """INSERT INTO orders_orderline (order_id, product_id, sku, name, unit_price, quantity, line_total)
           SELECT %s, id, sku, name, price, %s, price * %s FROM shop_product WHERE id = %s""",
        [order_id, quantity, quantity, product_id],
    )
    cur.execute("UPDATE shop_product SET stock_on_hand = stock_on_hand - %s WHERE id = %s", [quantity, product_id])
    cur.execute("UPDATE orders_order SET number = 'SO-' || lpad(id::text, 6, '0') WHERE id = %s", [order_id])
    conn.commit()

    # Charge the card
    charge_request = urllib.request.Request(  # noqa: S310
        settings.PAYMENT_PROVIDER_URL + "/v1/charges",
        data=json.dumps({"amount": str(total), "currency": "EUR", "reference": f"order-{order_id}"}).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())},
        method="POST",
    )
    charge = json.load(urllib.request.urlopen(charge_request))  # noqa: S310

    cur.execute("UPDATE orders_order SET status = 'paid', paid_at = now() WHERE id = %s", [order_id])
    conn.commit()
    conn.close()
    return Response({"id": order_id, "status": "paid", "charge": charge["id"]}, status=201)
