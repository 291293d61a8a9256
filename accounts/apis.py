from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView

from accounts.models import User
from accounts.services import user_register
from core.errors import ApplicationError


class RegisterApi(APIView):
    permission_classes = [AllowAny]

    class RegisterInputSerializer(serializers.Serializer[dict[str, str]]):
        username = serializers.RegexField(r"^[\w.@+-]{3,150}$", max_length=150)
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)

    class RegisteredUserSerializer(serializers.Serializer[User]):
        id = serializers.IntegerField()
        username = serializers.CharField()
        email = serializers.EmailField()

    @extend_schema(request=RegisterInputSerializer, responses={201: RegisteredUserSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        payload = self.RegisterInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = user_register(**payload.validated_data)
        return Response(self.RegisteredUserSerializer(user).data, status=201)


class TokenObtainApi(TokenObtainPairView):
    """POST username + password -> access (minutes) + refresh (rotated on use, blacklisted on logout).

    Brute force: the credentials are checked through django-axes with the Django request itself, so a failure
    here counts toward the same lockout as the web login page, and a locked-out username+address gets 429
    problem+json with Retry-After (accounts/lockout.py), even with the right password.
    """

    def get_serializer_context(self) -> dict[str, Any]:
        # axes marks the lockout on the request it is given; AxesMiddleware reads it from the Django request.
        return {**super().get_serializer_context(), "request": self.request._request}

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as error:
            raise InvalidToken(error.args[0]) from error
        # A token is a log-in: like the web login, it resets the failure count (AXES_RESET_ON_SUCCESS) and
        # records last_login.
        user = serializer.user  # type: ignore[attr-defined]
        user_logged_in.send(sender=type(user), request=request._request, user=user)
        return Response(serializer.validated_data, status=200)


class LogoutApi(APIView):
    """Blacklist a refresh token so a stolen copy is useless after logout."""

    class LogoutInputSerializer(serializers.Serializer[dict[str, str]]):
        refresh = serializers.CharField()

    @extend_schema(request=LogoutInputSerializer, responses={204: None}, tags=["auth"])
    def post(self, request: Request) -> Response:
        payload = self.LogoutInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            token = RefreshToken(payload.validated_data["refresh"])
            if token.get("user_id") != str(request.user.pk) and token.get("user_id") != request.user.pk:
                raise ApplicationError("That refresh token is not yours.", code="invalid_token", status=400)
            token.blacklist()
        except TokenError:
            raise ApplicationError(
                "The refresh token is invalid or expired.", code="invalid_token", status=400
            ) from None
        return Response(status=204)
