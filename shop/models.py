from __future__ import annotations

from decimal import Decimal

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.urls import reverse

from core.etags import version_etag


class Category(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"
        permissions = [("manage_category_products", "Can edit the products of this category")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("shop:category", kwargs={"slug": self.slug})


class Product(models.Model):
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    is_active = models.BooleanField(default=True)
    # Overselling: the database refuses a negative stock whatever the code path (see the constraint below).
    stock_on_hand = models.IntegerField(default=0)
    # Every unit ever put on the shelf; the invariant checker proves received = on hand + sold - returned.
    stock_received = models.IntegerField(default=0)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(stock_on_hand__gte=0), name="product_stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(price__gte=Decimal("0")), name="product_price_not_negative"),
            models.CheckConstraint(
                condition=Q(stock_on_hand__lte=F("stock_received")), name="product_stock_within_received"
            ),
        ]
        indexes = [
            models.Index(fields=["is_active", "category", "id"], name="product_active_category_id"),
            models.Index(fields=["is_active", "id"], name="product_active_id"),
            # The shoppers' order (name, id) on the home, category and search pages: read in index order, one page
            # at a time, instead of sorting the whole catalog on every request. See migration 0002.
            models.Index(fields=["is_active", "name", "id"], name="product_active_name_id"),
            models.Index(fields=["is_active", "category", "name", "id"], name="product_active_category_name"),
            # Search scans the catalog: `q` is icontains on the name (UPPER(name) LIKE '%..%', served by
            # trigrams) or an exact, case-insensitive SKU (UPPER(sku) = ..). fastupdate off: new products go
            # straight into the index, not into a pending list that the planner prices as a full scan until the
            # next VACUUM (migration 0003).
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="product_name_upper_trgm", fastupdate=False),
            models.Index(Upper("sku"), name="product_sku_upper"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"

    def get_absolute_url(self) -> str:
        return reverse("shop:product", kwargs={"slug": self.slug})

    @property
    def etag(self) -> str:
        return version_etag(self.version)
