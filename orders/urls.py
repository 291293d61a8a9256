from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("", views.order_list, name="list"),
    path("<int:pk>/", views.order_detail, name="detail"),
    path("<int:pk>/status/", views.order_status, name="status"),
    path("<int:pk>/edit/", views.order_edit, name="edit"),
    path("<int:pk>/cancel/", views.order_cancel_view, name="cancel"),
]
