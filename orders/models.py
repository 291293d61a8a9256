from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from core.etags import version_etag


class FulfilmentCentre(models.Model):
    """Where an order ships from. Fulfilment staff are granted centres, and see only those centres' orders."""

    code = models.SlugField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    # Routing rule: orders ship from the centre serving the destination country, else from the default one.
    country_codes = models.CharField(max_length=200, blank=True, help_text="Space-separated ISO codes")
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="fulfilment_centre_one_default"
            )
        ]
        permissions = [("fulfil_centre_orders", "Can see and ship the orders of this fulfilment centre")]

    def __str__(self) -> str:
        return self.name


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "Pending payment"
    PAID = "paid", "Paid"
    FULFILLED = "fulfilled", "Fulfilled"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    CANCELLED = "cancelled", "Cancelled"


# Stock follows the order's state: a live order holds its units; an order that can no longer be paid or shipped
# holds none (its units went back on the shelf in the transaction that moved it, see do_order_release_stock).
STATUSES_HOLDING_STOCK = frozenset({OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.FULFILLED})
STATUSES_WITHOUT_STOCK = frozenset({OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED})


class Order(models.Model):
    # NULL only inside the placing transaction, between the INSERT that assigns the id and the numbering.
    number = models.CharField(max_length=20, unique=True, null=True, editable=False)  # noqa: DJ001
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    fulfilment_centre = models.ForeignKey(
        FulfilmentCentre, on_delete=models.PROTECT, related_name="orders", null=True, blank=True
    )
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT)
    # Lost update: every change bumps the version; edits must name the version they read (If-Match).
    version = models.PositiveIntegerField(default=1)
    currency = models.CharField(max_length=3, default="EUR")
    total = models.DecimalField(max_digits=12, decimal_places=2)
    # Double submit: one order per (customer, key), guaranteed by the unique constraint below.
    idempotency_key = models.CharField(max_length=255)
    # Reused key after the retention window: the fingerprint of the request that placed the order stays with
    # the order, so a different request under the same key is refused at any age, not answered with this order.
    # Empty only for orders placed before it was kept (migration 0003 fills in what the key records still knew).
    # db_default: rows inserted by code that does not know the column yet (a rolling deploy) get "" too.
    request_fingerprint = models.CharField(max_length=64, blank=True, default="", db_default="")

    shipping_name = models.CharField(max_length=200)
    shipping_line1 = models.CharField(max_length=200)
    shipping_line2 = models.CharField(max_length=200, blank=True)
    shipping_city = models.CharField(max_length=100)
    shipping_postal_code = models.CharField(max_length=20)
    shipping_country = models.CharField(max_length=2)
    note = models.CharField(max_length=500, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Stock held forever: set, in the same UPDATE as the move to payment_failed or cancelled, when the units
    # went back on the shelf. It makes "returned exactly once" a guarded update and the rule checkable.
    stock_released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "idempotency_key"], name="order_one_per_idempotency_key"),
            models.CheckConstraint(condition=Q(total__gte=Decimal("0")), name="order_total_not_negative"),
            models.CheckConstraint(
                condition=Q(status__in=[choice.value for choice in OrderStatus]), name="order_status_known"
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="order_version_positive"),
            # Stock held forever: an order that can no longer be paid has returned its units, a live one has not.
            models.CheckConstraint(
                condition=Q(status__in=sorted(STATUSES_WITHOUT_STOCK), stock_released_at__isnull=False)
                | Q(status__in=sorted(STATUSES_HOLDING_STOCK), stock_released_at__isnull=True),
                name="order_stock_released_when_closed",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-id"], name="order_customer_recent"),
            models.Index(fields=["customer", "status", "-id"], name="order_customer_status_recent"),
            models.Index(fields=["fulfilment_centre", "status", "-id"], name="order_centre_status_recent"),
            # The admin's and the reports' "all paid orders, newest first": read in order, not filtered from
            # every order (migration 0002).
            models.Index(fields=["status", "-id"], name="order_status_recent"),
            models.Index(
                fields=["created_at"],
                name="order_pending_by_age",
                condition=Q(status="pending_payment"),
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"Order #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("orders:detail", kwargs={"pk": self.pk})

    @property
    def etag(self) -> str:
        return version_etag(self.version)

    @property
    def is_editable(self) -> bool:
        return self.status == OrderStatus.PENDING_PAYMENT

    @property
    def is_settled(self) -> bool:
        return self.status != OrderStatus.PENDING_PAYMENT

    @property
    def shipping_address(self) -> dict[str, str]:
        return {
            "name": self.shipping_name,
            "line1": self.shipping_line1,
            "line2": self.shipping_line2,
            "city": self.shipping_city,
            "postal_code": self.shipping_postal_code,
            "country": self.shipping_country,
        }


class OrderLine(models.Model):
    # Orphans: a line cannot exist without its order, and a product that was sold cannot be deleted.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey("shop.Product", on_delete=models.PROTECT, related_name="order_lines")
    sku = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    # Price changes: the price at the moment of purchase is kept, whatever the catalog says later.
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    quantity = models.PositiveIntegerField()
    line_total = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(line_total=F("unit_price") * F("quantity")), name="order_line_total_matches"
            ),
            models.UniqueConstraint(fields=["order", "product"], name="order_line_one_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"
