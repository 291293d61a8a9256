from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from mail.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Read-only: rows are written by the event's transaction and changed only by delivery (mail/services.py)."""

    list_display = ("event", "recipient", "order", "status", "attempts", "created_at", "sent_at")
    # N+1: the order column (its number) comes in the changelist's one query.
    list_select_related = ("order",)
    list_filter = ("status", "event")
    search_fields = ("recipient", "order__number", "event_key")
    # The context may hold a customer's address and order lines: shown, never edited.
    readonly_fields = [field.name for field in OutboxMessage._meta.concrete_fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
