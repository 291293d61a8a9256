from __future__ import annotations

from django.db import models
from django.db.models import Q


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CAPTURED = "captured", "Captured"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"


class Payment(models.Model):
    """The shop's record of one order's charge at the provider. The database, not the queue, is the truth."""

    # Double charge: one payment row per order, and the provider call carries `idempotency_key`.
    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="payment")
    idempotency_key = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    provider_reference = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[choice.value for choice in PaymentStatus]),
                name="payment_status_known",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment for order {self.order_id}: {self.status}"
