from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from idempotency.models import IdempotencyKey


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    """Read-only view of claimed keys, for support ("did my retry create a second order?")."""

    list_display = ("key", "user", "status", "response_status", "created_at", "completed_at")
    # N+1: the user column comes in the changelist's one query.
    list_select_related = ("user",)
    list_filter = ("status",)
    search_fields = ("key", "user__username")
    # The stored response can hold an order's address: it stays out of the change page.
    exclude = ("response_body", "response_headers")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        hidden = {"response_body", "response_headers"}
        return [field.name for field in IdempotencyKey._meta.concrete_fields if field.name not in hidden]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Reused key: a key deleted by hand would let a different request under it through as a fresh claim
        # (the order's fingerprint still refuses it, but support must not be able to cause the question).
        return False
