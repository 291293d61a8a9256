"""The account API: who am I, password reset and change, address change and confirmation.

Thin: a small input serializer with exact types and lengths (a stranger's junk is a 400, never a 500), one
service call, a small answer. Throttles are attached where the routes are declared (config/api_urls.py). The
error answers are not listed here: core/openapi.py derives them (problem+json, Retry-After on 429) from the
view's authentication, throttles and body, as for every other operation.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.apis import TokenPairOutputSerializer
from accounts.models import NEW_PASSWORD_MAX_LENGTH, PASSWORD_MAX_LENGTH, User
from accounts.passwords import InvalidResetLink, password_change, password_reset_confirm, password_reset_request
from accounts.tokens import user_from_uid
from accounts.verification import email_change_request, email_verification_resend, email_verify_confirm
from core.auth import request_user
from core.serializers import StrictInputSerializer

RESET_ACCEPTED = (
    "If an account has this verified address, a link to choose a new password is on its way to it. "
    "The link works once, for a limited time."
)


class DetailSerializer(serializers.Serializer[dict[str, str]]):
    detail = serializers.CharField()


def _password_field(*, new: bool = False) -> serializers.CharField:
    # A new password is held to the sign-up limit; the current one only to the limit any stored one can have.
    max_length = NEW_PASSWORD_MAX_LENGTH if new else PASSWORD_MAX_LENGTH
    return serializers.CharField(max_length=max_length, write_only=True, trim_whitespace=False)


class MeApi(APIView):
    """The signed-in account: its address and whether it is verified (accounts/verification.py has the rule)."""

    class AccountSerializer(serializers.Serializer[User]):
        id = serializers.IntegerField()
        username = serializers.CharField()
        email = serializers.EmailField()
        email_verified = serializers.BooleanField(source="is_email_verified")

    @extend_schema(responses={200: AccountSerializer}, tags=["auth"])
    def get(self, request: Request) -> Response:
        return Response(self.AccountSerializer(request_user(request)).data)


class PasswordResetApi(APIView):
    """Ask for a reset link. 202 and the same body whether or not the address has an account (no enumeration)."""

    permission_classes = [AllowAny]

    class PasswordResetInputSerializer(StrictInputSerializer):
        email = serializers.EmailField(max_length=254)

    @extend_schema(
        request=PasswordResetInputSerializer,
        responses={202: DetailSerializer},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        payload = self.PasswordResetInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        password_reset_request(email=payload.validated_data["email"])
        return Response({"detail": RESET_ACCEPTED}, status=202)


class PasswordResetConfirmApi(APIView):
    """Set a new password with the uid and token of a reset link (/accounts/reset/<uid>/<token>/)."""

    permission_classes = [AllowAny]

    class PasswordResetConfirmInputSerializer(StrictInputSerializer):
        uid = serializers.CharField(max_length=64)
        token = serializers.CharField(max_length=128)
        new_password = _password_field(new=True)

    @extend_schema(
        request=PasswordResetConfirmInputSerializer,
        responses={204: None},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        payload = self.PasswordResetConfirmInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = user_from_uid(payload.validated_data["uid"])
        if user is None:
            raise InvalidResetLink("This password reset link is not valid.")
        password_reset_confirm(
            user=user, token=payload.validated_data["token"], new_password=payload.validated_data["new_password"]
        )
        return Response(status=204)


class PasswordChangeApi(APIView):
    """Change the password (the current one is required). Every other token and session of the account ends;
    the answer carries a fresh token pair for the caller."""

    class PasswordChangeInputSerializer(StrictInputSerializer):
        current_password = _password_field()
        new_password = _password_field(new=True)

    @extend_schema(
        request=PasswordChangeInputSerializer,
        responses={200: TokenPairOutputSerializer},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        payload = self.PasswordChangeInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = password_change(
            user=request_user(request),
            current_password=payload.validated_data["current_password"],
            new_password=payload.validated_data["new_password"],
        )
        refresh = RefreshToken.for_user(user)
        return Response({"access": str(refresh.access_token), "refresh": str(refresh)})


class EmailChangeApi(APIView):
    """Ask to move the account to a new address (password required). 202: a confirmation link went there; the
    address changes when the link is used, by this account."""

    class EmailChangeInputSerializer(StrictInputSerializer):
        email = serializers.EmailField(max_length=254)
        password = _password_field()

    @extend_schema(
        request=EmailChangeInputSerializer,
        responses={202: DetailSerializer},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        payload = self.EmailChangeInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        sent = email_change_request(
            user=request_user(request),
            new_email=payload.validated_data["email"],
            password=payload.validated_data["password"],
        )
        detail = (
            "A confirmation link is on its way to the new address; your address changes when you use it."
            if sent
            else "This is already your verified address."
        )
        return Response({"detail": detail}, status=202)


class EmailVerifyApi(APIView):
    """Confirm an address with the token of its confirmation link, as the account it was sent for."""

    class EmailVerifyInputSerializer(StrictInputSerializer):
        token = serializers.CharField(max_length=512)

    @extend_schema(
        request=EmailVerifyInputSerializer,
        responses={200: MeApi.AccountSerializer},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        payload = self.EmailVerifyInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = email_verify_confirm(user=request_user(request), token=payload.validated_data["token"])
        return Response(MeApi.AccountSerializer(user).data)


class EmailVerifyResendApi(APIView):
    """Send the confirmation of the current address again (202), unless it is verified already."""

    @extend_schema(request=None, responses={202: DetailSerializer}, tags=["auth"])
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        sent = email_verification_resend(user=request_user(request))
        detail = "A confirmation link is on its way." if sent else "Your address is verified already."
        return Response({"detail": detail}, status=202)
