from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.core.validators import validate_email
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.models import NEW_PASSWORD_MAX_LENGTH, PASSWORD_MAX_LENGTH, USERNAME_MAX_LENGTH, User
from accounts.services import user_register
from core.errors import ApplicationError
from core.serializers import StrictInputSerializer

USERNAME_PATTERN = r"^[A-Za-z0-9_.@+-]{3,150}\Z"
# An address Django's EmailValidator accepts, spelled as a pattern the OpenAPI document can carry: `format:
# email` means something different to every validator, so a client and this server would disagree.
EMAIL_PATTERN = (
    r"^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\Z"
)


def django_accepts_email(value: str) -> None:
    # Belt and braces: the pattern is meant to be a subset of what Django accepts; this keeps it honest.
    validate_email(value)


class RegisterApi(APIView):
    permission_classes = [AllowAny]

    class RegisterInputSerializer(StrictInputSerializer):
        # Look-alike accounts: ASCII only ("alice" spelled with a Cyrillic "a" is another name that looks the
        # same), spelled out rather than \w so the OpenAPI pattern (ECMA regex) and this check agree. Not
        # trimmed: checked as sent.
        username = serializers.RegexField(
            USERNAME_PATTERN,
            max_length=USERNAME_MAX_LENGTH,
            trim_whitespace=False,
            error_messages={"invalid": "3-150 characters: letters a-z, digits and @ . + - _ only."},
        )
        email = serializers.RegexField(
            EMAIL_PATTERN,
            max_length=254,
            trim_whitespace=False,
            validators=[django_accepts_email],
            error_messages={"invalid": "Enter a valid e-mail address."},
        )
        password = serializers.CharField(
            min_length=8, max_length=NEW_PASSWORD_MAX_LENGTH, write_only=True, trim_whitespace=False
        )

    class RegisteredUserSerializer(serializers.Serializer[User]):
        id = serializers.IntegerField()
        username = serializers.CharField()
        # What was accepted (EMAIL_PATTERN), not `format: email`, which each validator reads differently.
        email = serializers.CharField()

    @extend_schema(request=RegisterInputSerializer, responses={201: RegisteredUserSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        payload = self.RegisterInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = user_register(**payload.validated_data)
        return Response(self.RegisteredUserSerializer(user).data, status=201)


class CredentialsInputSerializer(StrictInputSerializer, TokenObtainPairSerializer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Bad input: a username longer than the column reached django-axes, which writes it into a varchar(255)
        # (a 500). Nothing longer than a username can be one, so it is a 400 before authentication starts.
        self.fields[self.username_field] = serializers.CharField(write_only=True, max_length=USERNAME_MAX_LENGTH)
        self.fields["password"] = serializers.CharField(
            write_only=True, max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, style={"input_type": "password"}
        )


class TokenPairOutputSerializer(serializers.Serializer[dict[str, str]]):
    access = serializers.CharField()
    refresh = serializers.CharField()


class TokenObtainApi(TokenObtainPairView):
    """POST username + password -> access (minutes) + refresh (rotated on use, blacklisted on logout).

    Brute force: the credentials are checked through django-axes with the Django request itself, so a failure
    here counts toward the same lockout as the web login page, and a locked-out username+address gets 429
    problem+json with Retry-After (accounts/lockout.py), even with the right password.
    """

    serializer_class = CredentialsInputSerializer
    # Wrong credentials are 401; django-axes answers 429 to a locked-out username + address (core/openapi.py).
    error_statuses = (401, 429)

    def get_serializer_context(self) -> dict[str, Any]:
        # axes marks the lockout on the request it is given; AxesMiddleware reads it from the Django request.
        return {**super().get_serializer_context(), "request": self.request._request}

    @extend_schema(request=CredentialsInputSerializer, responses={200: TokenPairOutputSerializer}, tags=["auth"])
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


class RefreshInputSerializer(StrictInputSerializer, TokenRefreshSerializer):
    """simplejwt's refresh, except that a token whose account is gone is a 401, not User.DoesNotExist (500)."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            return super().validate(attrs)
        except User.DoesNotExist:
            # Deleted account: its refresh tokens stay signed until they expire; they must not work.
            raise InvalidToken("The account of this token no longer exists.") from None


class TokenRefreshApi(TokenRefreshView):
    """POST a refresh token -> a new access token and a rotated refresh token (the old one is blacklisted)."""

    serializer_class = RefreshInputSerializer
    error_statuses = (401,)  # an invalid, expired, blacklisted or orphaned refresh token

    @extend_schema(request=RefreshInputSerializer, responses={200: TokenPairOutputSerializer}, tags=["auth"])
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)


class LogoutApi(APIView):
    """Blacklist a refresh token so a stolen copy is useless after logout."""

    class LogoutInputSerializer(StrictInputSerializer):
        refresh = serializers.CharField()

    @extend_schema(request=LogoutInputSerializer, responses={204: None}, tags=["auth"])
    def post(self, request: Request) -> Response:
        payload = self.LogoutInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            token = RefreshToken(payload.validated_data["refresh"])
        except TokenError:
            # Like the refresh endpoint: a token that does not verify is 401 `invalid_token`.
            raise ApplicationError(
                "The refresh token is invalid or expired.", code="invalid_token", status=401
            ) from None
        if token.get("user_id") != str(request.user.pk) and token.get("user_id") != request.user.pk:
            raise ApplicationError("That refresh token is not yours.", code="not_your_token", status=403)
        token.blacklist()
        return Response(status=204)
