from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.forms import AdminLoginForm
from accounts.models import User

# Bad input: the admin's login form checks the username's length before django-axes stores it.
admin.site.login_form = AdminLoginForm


@admin.register(User)
class ShopUserAdmin(UserAdmin):
    """Staff accounts get is_staff here and join groups ("Fulfilment Berlin"); object grants themselves are
    given on the object (a fulfilment centre, a category) with its "Object permissions" button."""

    list_display = ("username", "email", "is_staff", "is_active", "date_joined", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("username", "email")
    ordering = ("-date_joined",)
