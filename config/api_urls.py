"""The v1 API, as written in the HTTP API contract."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.apis import LogoutApi, RegisterApi, TokenObtainApi, TokenRefreshApi
from core.throttling import LOGIN_THROTTLES, REGISTER_THROTTLES, WRITE_THROTTLES
from orders.apis import OrderCancelApi, OrderDetailApi, OrderListCreateApi
from shop.apis import CategoryListApi, ProductDetailApi, ProductListApi

app_name = "api"

# Abuse: login and signup are throttled per IP and per username; order writes per user and per IP
# (core/throttling.py; the write throttles pass GETs through untouched).
urlpatterns = [
    path("auth/register/", RegisterApi.as_view(throttle_classes=REGISTER_THROTTLES), name="register"),
    path("auth/token/", TokenObtainApi.as_view(throttle_classes=LOGIN_THROTTLES), name="token"),
    path("auth/token/refresh/", TokenRefreshApi.as_view(), name="token-refresh"),
    path("auth/logout/", LogoutApi.as_view(), name="logout"),
    path("categories/", CategoryListApi.as_view(), name="categories"),
    path("products/", ProductListApi.as_view(), name="products"),
    path("products/<int:product_id>/", ProductDetailApi.as_view(), name="product"),
    path("orders/", OrderListCreateApi.as_view(throttle_classes=WRITE_THROTTLES), name="orders"),
    path("orders/<int:order_id>/", OrderDetailApi.as_view(throttle_classes=WRITE_THROTTLES), name="order"),
    path(
        "orders/<int:order_id>/cancel/", OrderCancelApi.as_view(throttle_classes=WRITE_THROTTLES), name="order-cancel"
    ),
    # Staff section: fulfilment and catalog, scoped by object grants (backoffice/api_urls.py, names "staff-*").
    path("staff/", include("backoffice.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Content-Security-Policy: the split view serves Swagger UI's init script as a file (?script), not inline.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]
