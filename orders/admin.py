from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from guardian.admin import GuardedModelAdmin

from core.pagination import BoundedPaginator
from orders.models import FulfilmentCentre, Order, OrderLine


@admin.register(FulfilmentCentre)
class FulfilmentCentreAdmin(GuardedModelAdmin):
    """ "Object permissions" on a centre grants `fulfil_centre_orders` to a user or a group (e.g. the group
    "Fulfilment Berlin"): its members then see and ship that centre's orders in the back office, and only those."""

    list_display = ("name", "code", "country_codes", "is_default")
    search_fields = ("name", "code")


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = ("sku", "name", "unit_price", "quantity", "line_total")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Read-only: orders change only through orders.services (locks, stock, payments, versions)."""

    list_display = ("number", "customer", "status", "fulfilment_centre", "total", "currency", "created_at")
    # N+1: customer and centre come in the changelist's one query.
    list_select_related = ("customer", "fulfilment_centre")
    # Growing changelist: no date_hierarchy (it runs MIN/MAX and SELECT DISTINCT month over every order on every
    # view); the created_at filter offers the same ranges without reading the table. The count stops at
    # HTML_MAX_PAGES pages, and the unfiltered total ("of 100,000") is not counted at all.
    list_filter = ("status", "fulfilment_centre", "created_at")
    paginator = BoundedPaginator
    show_full_result_count = False
    list_per_page = 50
    search_fields = ("=number",)
    inlines = [OrderLineInline]
    exclude = ("idempotency_key",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Order._meta.concrete_fields if field.name != "idempotency_key"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        return super().get_queryset(request).select_related("customer", "fulfilment_centre")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
