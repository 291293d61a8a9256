from django.urls import path

from cart import views
from core.throttling import throttle

app_name = "cart"

# Abuse: every cart write (add, change, remove, checkout) counts against the same per-user and per-IP write
# limits as the order API; a script hammering "add to cart" is a row lock and an UPDATE per request.
writes = throttle("write_user", "write_ip")

urlpatterns = [
    path("", views.cart_detail, name="detail"),
    path("add/<int:product_id>/", writes(views.cart_add), name="add"),
    path("items/<int:product_id>/", writes(views.cart_update), name="update"),
    path("items/<int:product_id>/remove/", writes(views.cart_remove), name="remove"),
    path("checkout/", writes(views.checkout), name="checkout"),
]
