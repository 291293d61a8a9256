"""Stock comes back when a payment fails, and an order keeps the fingerprint of the request that placed it.

1. `stock_released_at`: set, in the same UPDATE as the move to payment_failed or cancelled, when the order's units
   went back on the shelf. Existing rows: cancelled orders returned their units when they were cancelled (marked,
   nothing moves); payment_failed orders never did (defect "a failed payment holds its stock forever"): their
   units are returned here, exactly once - the orders are locked, and only rows without the marker count, so a
   second run finds nothing to return. Migration 0004 then makes the rule the database's (a CHECK).
2. `request_fingerprint`: filled from the Idempotency-Key records that still exist (the last retention window);
   older orders keep an empty one (nothing left to compare a reuse with).
"""

from django.conf import settings
from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone


def release_stock_of_closed_orders(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    OrderLine = apps.get_model("orders", "OrderLine")
    Product = apps.get_model("shop", "Product")
    now = timezone.now()
    Order.objects.filter(status="cancelled", stock_released_at__isnull=True).update(
        stock_released_at=Coalesce(F("cancelled_at"), Value(now))
    )
    # Stock returned twice: the rows are locked, and only orders not yet marked are counted, then marked.
    failed = list(
        Order.objects.select_for_update()
        .filter(status="payment_failed", stock_released_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    held = (
        OrderLine.objects.filter(order_id__in=failed)
        .values("product_id")
        .annotate(units=Sum("quantity"))
        .order_by("product_id")
    )
    for row in held:
        Product.objects.filter(pk=row["product_id"]).update(stock_on_hand=F("stock_on_hand") + row["units"])
    Order.objects.filter(pk__in=failed).update(stock_released_at=now, updated_at=now)


def keep_fingerprints_the_keys_still_know(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    IdempotencyKey = apps.get_model("idempotency", "IdempotencyKey")
    fingerprint = IdempotencyKey.objects.filter(
        user_id=OuterRef("customer_id"), key=OuterRef("idempotency_key"), status="completed"
    ).values("fingerprint")[:1]
    Order.objects.filter(request_fingerprint="").update(
        request_fingerprint=Coalesce(Subquery(fingerprint), Value(""))
    )


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0002_order_status_recent"),
        ("idempotency", "0002_idempotency_key_checks"),
        ("shop", "0003_product_name_trgm_no_pending_list"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="request_fingerprint",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.AddField(
            model_name="order",
            name="stock_released_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(release_stock_of_closed_orders, migrations.RunPython.noop),
        migrations.RunPython(keep_fingerprints_the_keys_still_know, migrations.RunPython.noop),
    ]
