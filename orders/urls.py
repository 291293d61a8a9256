from django.urls import path

from core.throttling import throttle
from orders import views

app_name = "orders"

# Abuse: edit and cancel POSTs count against the same write limits as the order API (GETs pass untouched).
urlpatterns = [
    path("", views.order_list, name="list"),
    path("<int:pk>/", views.order_detail, name="detail"),
    path("<int:pk>/status/", views.order_status, name="status"),
    path("<int:pk>/edit/", throttle("write_user", "write_ip")(views.order_edit), name="edit"),
    path("<int:pk>/cancel/", throttle("write_user", "write_ip")(views.order_cancel_view), name="cancel"),
]
