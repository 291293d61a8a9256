"""Who may enter the staff section at all. Which objects they may touch inside it is decided by the
scoped selectors (backoffice/selectors.py): being staff opens the door, grants decide the rooms."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView


def is_active_staff(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


class IsStaff(BasePermission):
    """API: anonymous 401, a customer 403 (no object is looked up for them, so nothing can be probed)."""

    message = "This section is for shop staff."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_active_staff(request.user)


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Web: anonymous users go to the login page, customers get the 403 page."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_active_staff(request.user):
            raise PermissionDenied("This section is for shop staff.")
        return view(request, *args, **kwargs)

    return guarded
