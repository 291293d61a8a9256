"""Stock held forever, refused by the database: a payment_failed or cancelled order has returned its units
(`stock_released_at` is set), a live order has not.

Its own migration, after 0003 filled the marker in: PostgreSQL refuses to ALTER a table in the transaction
that just updated its rows (pending foreign-key trigger events).
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0003_order_stock_released_and_fingerprint"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status__in", ["cancelled", "payment_failed"]), ("stock_released_at__isnull", False)),
                    models.Q(
                        ("status__in", ["fulfilled", "paid", "pending_payment"]), ("stock_released_at__isnull", True)
                    ),
                    _connector="OR",
                ),
                name="order_stock_released_when_closed",
            ),
        ),
    ]
