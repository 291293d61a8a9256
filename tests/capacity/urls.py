"""Test-only routes (used with @pytest.mark.urls): a deliberately slow query, and a throttled web view.

They exist only here, never in config/urls.py, so production has no route that can run pg_sleep.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.throttling import throttle


def _sleep_in_database(seconds: float, *, statement_timeout_off: bool) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        if statement_timeout_off:
            # The twin: the protection switched off for this transaction only.
            cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute("SELECT pg_sleep(%s)", [seconds])


class SlowQueryApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request: Request) -> Response:
        seconds = float(request.query_params.get("seconds", "3"))
        _sleep_in_database(seconds, statement_timeout_off=request.query_params.get("timeout") == "off")
        return Response({"slept": seconds})


@login_not_required
def slow_query_page(request: HttpRequest) -> HttpResponse:
    _sleep_in_database(float(request.GET.get("seconds", "3")), statement_timeout_off=False)
    return HttpResponse("done")


@login_not_required
@throttle("login_ip", "login_username")
def throttled_login_page(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


urlpatterns = [
    path("api/_test/slow-query/", SlowQueryApi.as_view()),
    path("_test/slow-query/", slow_query_page),
    path("_test/login/", throttled_login_page),
    path("", include("config.urls")),
]
