"""The shop's routes plus /boom/, an API view that fails after touching every kind of secret."""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from orders.models import Order
from tests.observability.live.tasks import explode_task


class BoomApi(APIView):
    def post(self, request: Request) -> Response:
        payload: dict[str, Any] = dict(request.data)
        # Secrets reach SQL parameters (breadcrumbs, spans) and an exception message.
        User.objects.filter(username=payload["password"]).exists()
        Order.objects.filter(shipping_line1=payload["shipping_address"]["line1"]).exists()
        explode_task.delay(card_number=payload["card_number"])
        raise RuntimeError(f"payment step failed for card {payload['card_number']}")


urlpatterns = [
    path("boom/", BoomApi.as_view(), name="boom"),
    path("", include("config.urls")),
]
