"""Web sign-up and log-in forms."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.validators import ASCIIUsernameValidator
from django.core.validators import MaxLengthValidator

from accounts.models import NEW_PASSWORD_MAX_LENGTH, PASSWORD_MAX_LENGTH, USERNAME_MAX_LENGTH


class SignupForm(forms.Form):
    username = forms.CharField(
        label="Username",
        max_length=USERNAME_MAX_LENGTH,
        # Look-alike accounts: ASCII only, like the API ("alice" spelled with a Cyrillic "a" looks the same).
        validators=[ASCIIUsernameValidator()],
        help_text="Letters a-z, digits and @/./+/-/_ only.",
        widget=forms.TextInput({"autocomplete": "username", "autocapitalize": "none"}),
    )
    email = forms.EmailField(label="Email", widget=forms.EmailInput({"autocomplete": "email"}))
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=NEW_PASSWORD_MAX_LENGTH,
        help_text="At least 8 characters; not only digits, not a common password.",
        widget=forms.PasswordInput({"autocomplete": "new-password"}),
    )
    password_confirm = forms.CharField(
        label="Password again", strip=False, widget=forms.PasswordInput({"autocomplete": "new-password"})
    )

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if cleaned.get("password") and cleaned.get("password") != cleaned.get("password_confirm"):
            self.add_error("password_confirm", "The two passwords differ.")
        return cleaned


class BoundedCredentialsMixin:
    """AuthenticationForm only sets the username's maxlength on the widget, not as a validator: a 10,000
    character username reached authenticate() and django-axes, which writes it into a varchar(255) (a 500).
    Both lengths are checked here, before authentication starts."""

    fields: dict[str, forms.Field]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.fields["username"].validators.append(MaxLengthValidator(USERNAME_MAX_LENGTH))
        self.fields["password"].validators.append(MaxLengthValidator(PASSWORD_MAX_LENGTH))


class LoginForm(BoundedCredentialsMixin, AuthenticationForm):
    """Django's login form (it passes the request to authenticate(), which django-axes needs)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That username and password do not match. Passwords are case-sensitive.",
    }


class AdminLoginForm(BoundedCredentialsMixin, AdminAuthenticationForm):
    """The admin's login form with the same bounds (accounts/admin.py installs it on the admin site)."""
