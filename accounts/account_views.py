"""Web pages for the account: its settings, password reset and change, address confirmation.

Thin: forms parse, accounts/passwords.py and accounts/verification.py decide. Links from mail only show a page
on GET; the change happens on POST (mail scanners open links, and a GET must not change anything).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN, PasswordResetConfirmView
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.account_forms import EmailChangeForm, NewPasswordForm, PasswordChangeForm, PasswordResetRequestForm
from accounts.models import User
from accounts.passwords import InvalidResetLink, PasswordRefused, password_change, password_reset_confirm
from accounts.passwords import password_reset_request as password_reset_request_service
from accounts.tokens import email_verification_claim, user_from_uid
from accounts.verification import (
    InvalidVerificationLink,
    email_change_request,
    email_verification_resend,
    email_verify_confirm,
)
from core.auth import request_user
from core.errors import ApplicationError
from core.web import form_errors_from


def _link_invalid(request: HttpRequest, refusal: ApplicationError, *, again_url: str) -> HttpResponse:
    context = {"title": refusal.title, "detail": refusal.detail, "again_url": again_url}
    return render(request, "accounts/link_invalid.html", context, status=400)


# --- The account page ------------------------------------------------------------------------------------------


@require_GET
def account(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/account.html", {"account": request_user(request)})


@require_http_methods(["GET", "POST"])
def password_change_page(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = password_change(
                user=request_user(request),
                current_password=form.cleaned_data["current_password"],
                new_password=form.cleaned_data["new_password"],
            )
        except PasswordRefused as refusal:
            form_errors_from(form, refusal)
        else:
            # Other sessions end (their password hash no longer matches); this one is kept, with a new hash.
            update_session_auth_hash(request, user)
            messages.success(request, "Your password is changed. Every other session of your account is signed out.")
            return redirect("accounts:account")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/password_change.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
def email_change(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    form = EmailChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sent = email_change_request(
                user=user, new_email=form.cleaned_data["email"], password=form.cleaned_data["password"]
            )
        except PasswordRefused as refusal:
            form_errors_from(form, refusal)
        else:
            if sent:
                messages.success(
                    request,
                    f"We sent a confirmation link to {form.cleaned_data['email']}. Your address stays {user.email} "
                    "until you open it (signed in to this account).",
                )
            else:
                messages.info(request, "That is already your verified address.")
            return redirect("accounts:account")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/email_change.html", {"form": form, "account": user}, status=status)


@require_POST
def email_verify_resend(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    if email_verification_resend(user=user):
        messages.success(request, f"We sent a confirmation link to {user.email}.")
    else:
        messages.info(request, "Your address is verified already.")
    return redirect("accounts:account")


@require_http_methods(["GET", "POST"])
def email_verify(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the confirmation mail. Signed-in only (deny by default sends everyone else to log in)."""
    user = request_user(request)
    claim = email_verification_claim(token)
    if request.method == "GET":
        if claim is None or not claim.is_current_for(user):
            refusal = InvalidVerificationLink(
                "This confirmation link is not valid for this account any more: it expired, was used, "
                "was replaced by a newer one, or was sent for another account."
            )
            return _link_invalid(request, refusal, again_url=str(reverse_lazy("accounts:account")))
        return render(request, "accounts/email_verify.html", {"email": claim.email, "account": user})
    try:
        email_verify_confirm(user=user, token=token)
    except InvalidVerificationLink as refusal:
        return _link_invalid(request, refusal, again_url=str(reverse_lazy("accounts:account")))
    messages.success(request, "Thank you: your email address is confirmed.")
    return redirect("accounts:account")


# --- Password reset (signed out) -------------------------------------------------------------------------------


@login_not_required  # Deny by default is on: a forgotten password is exactly when one cannot sign in.
@require_http_methods(["GET", "POST"])
def password_reset_request(request: HttpRequest) -> HttpResponse:
    form = PasswordResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        password_reset_request_service(email=form.cleaned_data["email"])
        # Account enumeration: the same page whether or not the address has an account.
        return redirect("accounts:password-reset-sent")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/password_reset_request.html", {"form": form}, status=status)


@login_not_required
@require_GET
def password_reset_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/password_reset_sent.html")


@login_not_required
@require_GET
def password_reset_complete(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/password_reset_complete.html")


class ShopPasswordResetConfirmView(PasswordResetConfirmView):
    """Django's confirm view (the token moves from the URL into the session, so it never leaks in a Referer),
    finished by accounts.passwords: the token is re-checked under the row lock and every token is revoked."""

    template_name = "accounts/password_reset_confirm.html"
    form_class = NewPasswordForm  # type: ignore[assignment]
    success_url = reverse_lazy("accounts:password-reset-complete")

    def get_user(self, uidb64: str) -> User | None:  # type: ignore[override]
        # A 500 from a stranger: Django's own lookup lets an out-of-range id reach PostgreSQL.
        return user_from_uid(uidb64)

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs = super().get_form_kwargs()
        kwargs.pop("user", None)  # NewPasswordForm needs no user: the service validates against it
        return kwargs

    def form_valid(self, form: NewPasswordForm) -> HttpResponse:  # type: ignore[override]
        assert self.user is not None  # dispatch() only shows the form for a valid link
        try:
            password_reset_confirm(
                user=self.user,
                token=self.request.session.get(INTERNAL_RESET_SESSION_TOKEN, ""),
                new_password=form.cleaned_data["new_password"],
            )
        except PasswordRefused as refusal:
            form_errors_from(form, refusal)
            return self.form_invalid(form)
        except InvalidResetLink as refusal:
            return _link_invalid(
                request=self.request, refusal=refusal, again_url=str(reverse_lazy("accounts:password-reset"))
            )
        self.request.session.pop(INTERNAL_RESET_SESSION_TOKEN, None)
        return redirect(self.success_url)

    def form_invalid(self, form: Form) -> HttpResponse:  # type: ignore[override]
        response = super().form_invalid(form)  # type: ignore[arg-type]
        response.status_code = 400
        return response

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> HttpResponse:
        response = super().render_to_response(context, **kwargs)
        if not context.get("validlink"):
            response.status_code = 400  # an invalid or used link is a clear 4xx with a helpful page
        return response  # type: ignore[return-value]
