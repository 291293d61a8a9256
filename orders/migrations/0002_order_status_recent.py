"""Orders by status, newest first, without reading every order.

`WHERE status = 'paid' ORDER BY id DESC LIMIT 50` (the admin's status filter, and its bounded count) has no
index that starts with the status, so PostgreSQL walks the primary key backwards and filters: cheap while paid
orders are recent, a scan of the whole table once fewer paid orders exist than the page or count needs.
Built CONCURRENTLY (atomic = False) so order placement is not blocked while it builds on a live table.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(fields=["status", "-id"], name="order_status_recent"),
        ),
    ]
