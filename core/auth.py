from __future__ import annotations

from django.http import HttpRequest
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from accounts.models import User


def request_user(request: Request | HttpRequest) -> User:
    """The signed-in user of a view that requires authentication (typed, never AnonymousUser)."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise NotAuthenticated()
    return user
