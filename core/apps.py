from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Cross-cutting HTTP concerns"


class ShopAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the shop's site as the default (core/admin.py)."""

    default = False  # core's own config stays CoreConfig; settings name this one explicitly
    default_site = "core.admin.ShopAdminSite"
