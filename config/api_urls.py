"""The v1 API, as written in the HTTP API contract."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.account_apis import (
    EmailChangeApi,
    EmailVerifyApi,
    EmailVerifyResendApi,
    MeApi,
    PasswordChangeApi,
    PasswordResetApi,
    PasswordResetConfirmApi,
)
from accounts.apis import LogoutApi, RegisterApi, TokenObtainApi, TokenRefreshApi
from core.throttling import (
    ACCOUNT_THROTTLES,
    LOGIN_THROTTLES,
    PASSWORD_RESET_THROTTLES,
    REGISTER_THROTTLES,
    WRITE_THROTTLES,
    PasswordResetIpThrottle,
)
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
    # Account recovery and the account's own address (accounts/account_apis.py). Mail bombing and guessing:
    # reset requests per IP and per address, confirmations per IP, account changes per user.
    path("auth/me/", MeApi.as_view(), name="me"),
    path(
        "auth/password-reset/",
        PasswordResetApi.as_view(throttle_classes=PASSWORD_RESET_THROTTLES),
        name="password-reset",
    ),
    path(
        "auth/password-reset/confirm/",
        PasswordResetConfirmApi.as_view(throttle_classes=[PasswordResetIpThrottle]),
        name="password-reset-confirm",
    ),
    path("auth/password/", PasswordChangeApi.as_view(throttle_classes=ACCOUNT_THROTTLES), name="password-change"),
    path("auth/email/", EmailChangeApi.as_view(throttle_classes=ACCOUNT_THROTTLES), name="email-change"),
    path("auth/email/verify/", EmailVerifyApi.as_view(throttle_classes=ACCOUNT_THROTTLES), name="email-verify"),
    path(
        "auth/email/verify/resend/",
        EmailVerifyResendApi.as_view(throttle_classes=ACCOUNT_THROTTLES),
        name="email-verify-resend",
    ),
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
