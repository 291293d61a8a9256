from django.urls import path

from accounts import views
from core.throttling import throttle

app_name = "accounts"

# Abuse: sign-up and login POSTs are rate limited (core/throttling.py; they fail closed when Redis is down).
urlpatterns = [
    path("signup/", throttle("register_ip")(views.signup), name="signup"),
    path("login/", throttle("login_ip", "login_username")(views.ShopLoginView.as_view()), name="login"),
    path("logout/", views.ShopLogoutView.as_view(), name="logout"),
]
