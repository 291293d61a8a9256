from django.urls import path

from accounts import account_views, views
from core.throttling import throttle

app_name = "accounts"

# Abuse: sign-up and login POSTs are rate limited (core/throttling.py; they fail closed when Redis is down).
urlpatterns = [
    path("signup/", throttle("register_ip")(views.signup), name="signup"),
    path("login/", throttle("login_ip", "login_username")(views.ShopLoginView.as_view()), name="login"),
    path("logout/", views.ShopLogoutView.as_view(), name="logout"),
    # The signed-in account (accounts/account_views.py): its address, password and confirmation links.
    path("account/", account_views.account, name="account"),
    path("password/", throttle("account_user")(account_views.password_change_page), name="password-change"),
    path("email/", throttle("account_user")(account_views.email_change), name="email-change"),
    path("email/resend/", throttle("account_user")(account_views.email_verify_resend), name="email-verify-resend"),
    path("verify/<str:token>/", throttle("account_user")(account_views.email_verify), name="email-verify"),
    # Password reset, signed out. Mail bombing and guessing: per IP and per address.
    path(
        "password-reset/",
        throttle("password_reset_ip", "password_reset_email")(account_views.password_reset_request),
        name="password-reset",
    ),
    path("password-reset/sent/", account_views.password_reset_sent, name="password-reset-sent"),
    path(
        "reset/<str:uidb64>/<str:token>/",
        throttle("password_reset_ip")(account_views.ShopPasswordResetConfirmView.as_view()),
        name="password-reset-confirm",
    ),
    path("reset/done/", account_views.password_reset_complete, name="password-reset-complete"),
]
