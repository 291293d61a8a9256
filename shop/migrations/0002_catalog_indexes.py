"""Catalog reads that do not grow with the catalog: shoppers' ordering and search, each with its index.

- (is_active, name, id) and (is_active, category, name, id): the home, category and search pages list products
  by name; with these PostgreSQL reads one page in index order instead of sorting every product per request.
- `?q=` is `name__icontains` (UPPER(name) LIKE '%TEXT%') or `sku__iexact` (UPPER(sku) = 'TEXT'): a trigram
  GIN index on UPPER(name) and a btree on UPPER(sku), else every search reads the whole product table.

The indexes are built CONCURRENTLY (hence atomic = False): on a live shop a plain CREATE INDEX blocks writes to
products, and so order placement, for as long as the build takes.
"""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import AddIndexConcurrently, TrigramExtension
from django.db import migrations, models
from django.db.models.functions import Upper


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("shop", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="product",
            index=models.Index(fields=["is_active", "name", "id"], name="product_active_name_id"),
        ),
        AddIndexConcurrently(
            model_name="product",
            index=models.Index(fields=["is_active", "category", "name", "id"], name="product_active_category_name"),
        ),
        TrigramExtension(),
        AddIndexConcurrently(
            model_name="product",
            index=GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="product_name_upper_trgm"),
        ),
        AddIndexConcurrently(
            model_name="product",
            index=models.Index(Upper("sku"), name="product_sku_upper"),
        ),
    ]
