"""Test-only routes (with @pytest.mark.urls, or tests/fuzz/live_settings.py): views that fail on purpose.

A real bug in a view is what reaches the last-resort 500; these stand in for one. They exist only here.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

CRASH_MESSAGE = "a bug the fuzzer found"


class CrashApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise RuntimeError(CRASH_MESSAGE)


@login_not_required
def crash_page(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(CRASH_MESSAGE)


@login_not_required
def bare_refusal(request: HttpRequest, status: int) -> HttpResponse:
    """An error answer with nothing but its status, as a middleware or a decorator would give it."""
    return HttpResponse(status=status)


urlpatterns = [
    path("api/v1/_crash/", CrashApi.as_view(), name="crash-api"),
    path("api/v1/_bare/<int:status>/", bare_refusal, name="bare-refusal-api"),
    path("_crash/", crash_page, name="crash-page"),
    path("", include("config.urls")),
]
