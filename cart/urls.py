from django.urls import path

from cart import views
from core.throttling import throttle

app_name = "cart"

# Abuse: checkout POSTs count against the same per-user and per-IP write limits as the order API.
urlpatterns = [
    path("", views.cart_detail, name="detail"),
    path("add/<int:product_id>/", views.cart_add, name="add"),
    path("items/<int:product_id>/", views.cart_update, name="update"),
    path("items/<int:product_id>/remove/", views.cart_remove, name="remove"),
    path("checkout/", throttle("write_user", "write_ip")(views.checkout), name="checkout"),
]
