"""Web sign-up and log-in forms."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.validators import ASCIIUsernameValidator


class SignupForm(forms.Form):
    username = forms.CharField(
        label="Username",
        max_length=150,
        # Look-alike accounts: ASCII only, like the API ("alice" spelled with a Cyrillic "a" looks the same).
        validators=[ASCIIUsernameValidator()],
        help_text="Letters a-z, digits and @/./+/-/_ only.",
        widget=forms.TextInput({"autocomplete": "username", "autocapitalize": "none"}),
    )
    email = forms.EmailField(label="Email", widget=forms.EmailInput({"autocomplete": "email"}))
    password = forms.CharField(
        label="Password",
        strip=False,
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


class LoginForm(AuthenticationForm):
    """Django's login form (it passes the request to authenticate(), which django-axes needs)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That username and password do not match. Passwords are case-sensitive.",
    }
