"""Web sign-up, log-in and log-out (session auth). Thin: forms parse, accounts.services writes."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts.forms import LoginForm, SignupForm
from accounts.services import RegistrationRefused, user_register
from core.web import form_errors_from


def _safe_next(request: HttpRequest) -> str | None:
    target = request.POST.get("next") or request.GET.get("next")
    # Open redirect: only same-host targets are followed after sign-up.
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return None


@login_not_required  # Deny by default is on (LoginRequiredMiddleware): sign-up is public by design.
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("shop:home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_register(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
            )
        except RegistrationRefused as error:
            form_errors_from(form, error)
        else:
            # Session fixation: login() issues a new session key for the new account.
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.info(
                request,
                f"Welcome! We sent a link to {user.email}: open it, signed in, to confirm your address.",
            )
            return redirect(_safe_next(request) or "shop:home")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/signup.html", {"form": form, "next": _safe_next(request)}, status=status)


class ShopLoginView(LoginView):
    """Django's LoginView: new session key at login (session fixation), safe `next`, CSRF-protected."""

    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form: LoginForm) -> HttpResponse:  # type: ignore[override]
        response = super().form_invalid(form)
        response.status_code = 400
        return response


class ShopLogoutView(LogoutView):
    """POST only (Django 5): the session is flushed, so the old session cookie is dead."""
