from django.urls import path

from cart import views

app_name = "cart"

urlpatterns = [
    path("", views.cart_detail, name="detail"),
    path("add/<int:product_id>/", views.cart_add, name="add"),
    path("items/<int:product_id>/", views.cart_update, name="update"),
    path("items/<int:product_id>/remove/", views.cart_remove, name="remove"),
    path("checkout/", views.checkout, name="checkout"),
]
