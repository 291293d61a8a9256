from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from core.pagination import BoundedPaginator
from shop.models import Category, Product


@admin.register(Category)
class CategoryAdmin(GuardedModelAdmin):
    """ "Object permissions" on a category grants `manage_category_products` to a user or a group: they can
    then edit that category's products in the back office (/staff/products/), and only those."""

    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "sku", "category", "price", "currency", "stock_on_hand", "is_active", "version")
    # N+1: the category column comes in the changelist's one query (JOIN), not one query per row.
    list_select_related = ("category",)
    list_filter = ("is_active", "category")
    # The same search shape as the shop's (name contains, SKU exact), so it uses the same indexes; the count
    # stops at HTML_MAX_PAGES pages and the unfiltered total is not counted.
    search_fields = ("name", "=sku")
    paginator = BoundedPaginator
    show_full_result_count = False
    list_per_page = 50
    ordering = ("-id",)  # newest first, read in primary key order: no sort of every match per page
    prepopulated_fields = {"slug": ("name",)}
    # Stock moves only through receiving and sales (conservation: received = on hand + sold), and the version
    # is the server's optimistic lock: neither is typed in by hand.
    readonly_fields = ("stock_on_hand", "stock_received", "version", "created_at", "updated_at")
