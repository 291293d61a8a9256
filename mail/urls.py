from django.urls import path

from mail import views

app_name = "mail"

urlpatterns = [
    path("", views.sink_message_list, name="sink-list"),
    path("<str:name>/", views.sink_message_detail, name="sink-detail"),
]
