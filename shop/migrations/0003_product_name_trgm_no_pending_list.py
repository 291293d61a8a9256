"""The trigram search index without a pending list (fastupdate = off).

With GIN's default fastupdate, rows inserted in bulk (an import, seed_demo) wait in the index's pending list
until the next VACUUM. The planner prices a scan of that list like a scan of the table, so it ignores the index
and `?q=` becomes a sequential scan whose cost grows with the catalog, until autovacuum happens to run.
Products are written rarely and searched constantly: each insert updates the index at once instead.
"""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import migrations
from django.db.models.functions import Upper

NEW = GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="product_name_upper_trgm", fastupdate=False)


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0002_catalog_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        "ALTER INDEX product_name_upper_trgm SET (fastupdate = off)",
                        # Move whatever already waits in the pending list into the index proper.
                        "SELECT gin_clean_pending_list('product_name_upper_trgm'::regclass)",
                    ],
                    reverse_sql=["ALTER INDEX product_name_upper_trgm RESET (fastupdate)"],
                )
            ],
            state_operations=[
                migrations.RemoveIndex(model_name="product", name="product_name_upper_trgm"),
                migrations.AddIndex(model_name="product", index=NEW),
            ],
        ),
    ]
