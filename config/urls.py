from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from core.health import healthz, readyz, readyz_serving
from core.throttling import throttle
from observability.views import metrics_view

handler400 = "core.views.bad_request"
handler403 = "core.views.permission_denied"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("readyz/serving", readyz_serving, name="readyz-serving"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include("config.api_urls")),
    # Brute force: the admin login counts against the same per-IP and per-username limits as the shop's login
    # (django-axes locks the username+address out as well). Listed before admin.site.urls, so it wins.
    path("admin/login/", throttle("login_ip", "login_username")(admin.site.login), name="admin-login"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("cart/", include("cart.urls")),
    path("orders/", include("orders.urls")),
    path("staff/", include("backoffice.urls")),
    # Development only (404 in production): the mail the local SMTP sink received.
    path("dev/mail/", include("mail.urls")),
    path("", include("shop.urls")),
]

if settings.WORKSHOP_ENABLED:
    # Teaching only (never in production): the failure modes' twins and the teacher page, before the catalog.
    urlpatterns.insert(-1, path("workshop/", include("workshop.urls")))
