from django.urls import path

from backoffice import views

app_name = "staff"

urlpatterns = [
    path("", views.dashboard, name="home"),
    path("orders/", views.order_list, name="orders"),
    path("orders/<int:pk>/", views.order_detail, name="order"),
    path("orders/<int:pk>/fulfil/", views.order_fulfil_view, name="order-fulfil"),
    path("products/", views.product_list, name="products"),
    path("products/<int:pk>/", views.product_edit, name="product"),
]
