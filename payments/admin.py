from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from payments.models import Payment


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """Read-only: payments change only through payments.services (provider calls, idempotency keys)."""

    list_display = ("order", "status", "amount", "currency", "attempts", "provider_reference", "updated_at")
    # N+1: the order column (its number) comes in the changelist's one query.
    list_select_related = ("order",)
    list_filter = ("status",)
    search_fields = ("order__number", "provider_reference")
    exclude = ("idempotency_key",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Payment._meta.concrete_fields if field.name != "idempotency_key"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
