from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from cart.models import Cart, CartItem


class CartItemInline(admin.TabularInline):
    model = CartItem
    extra = 0
    fields = ("product", "quantity", "added_at")
    readonly_fields = fields
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[CartItem]:
        # N+1: each line's product name comes with the line, not one query per line.
        return super().get_queryset(request).select_related("product")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    """Read-only support view of carts; customers change their carts through cart.services only."""

    list_display = ("user", "item_count", "version", "updated_at")
    # N+1: user in the JOIN, the item count as one aggregate, not a query per cart.
    list_select_related = ("user",)
    search_fields = ("user__username",)
    readonly_fields = ("user", "version", "updated_at")
    inlines = [CartItemInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Cart]:
        return super().get_queryset(request).annotate(item_total=Count("items"))

    @admin.display(description="items", ordering="item_total")
    def item_count(self, cart: Cart) -> int:
        return int(getattr(cart, "item_total", 0))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
