"""Web forms for the account's own settings and for recovery. They parse; accounts/passwords.py and
accounts/verification.py decide."""

from __future__ import annotations

from django import forms

from accounts.models import NEW_PASSWORD_MAX_LENGTH, PASSWORD_MAX_LENGTH


def _password(label: str, autocomplete: str, help_text: str = "", *, new: bool = False) -> forms.CharField:
    # A new password is held to the sign-up limit; the current one only to the limit any stored one can have.
    return forms.CharField(
        label=label,
        strip=False,
        max_length=NEW_PASSWORD_MAX_LENGTH if new else PASSWORD_MAX_LENGTH,
        help_text=help_text,
        widget=forms.PasswordInput({"autocomplete": autocomplete}),
    )


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(
        label="Your email address", max_length=254, widget=forms.EmailInput({"autocomplete": "email"})
    )


class NewPasswordForm(forms.Form):
    new_password = _password(
        "New password", "new-password", "At least 8 characters; not only digits, not a common password.", new=True
    )
    new_password_confirm = _password("New password again", "new-password", new=True)

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if cleaned.get("new_password") and cleaned.get("new_password") != cleaned.get("new_password_confirm"):
            self.add_error("new_password_confirm", "The two passwords differ.")
        return cleaned


class PasswordChangeForm(NewPasswordForm):
    current_password = _password("Current password", "current-password")
    field_order = ["current_password", "new_password", "new_password_confirm"]


class EmailChangeForm(forms.Form):
    email = forms.EmailField(
        label="New email address", max_length=254, widget=forms.EmailInput({"autocomplete": "email"})
    )
    password = _password("Your password", "current-password", "So that an open session alone cannot move your mail.")
