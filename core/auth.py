from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

if TYPE_CHECKING:
    # Typing only: core is the bottom layer and never imports an app at run time (pyproject.toml contracts).
    from accounts.models import User


def request_user(request: Request | HttpRequest) -> User:
    """The signed-in user of a view that requires authentication (typed, never AnonymousUser)."""
    user = request.user
    if not isinstance(user, get_user_model()) or not user.is_authenticated:
        raise NotAuthenticated()
    return cast("User", user)
