"""Order forms for the web: the shipping address (shared with checkout) and the versioned edit form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core import signing

from orders.models import Order
from orders.services import ShippingAddress

ORIGINAL_SALT = "orders.edit.original"
EDITABLE_FIELDS = ("name", "line1", "line2", "city", "postal_code", "country", "note")
FIELD_LABELS = {
    "name": "Full name",
    "line1": "Address",
    "line2": "Address line 2",
    "city": "City",
    "postal_code": "Postal code",
    "country": "Country",
    "note": "Note",
}


class ShippingAddressForm(forms.Form):
    name = forms.CharField(label=FIELD_LABELS["name"], max_length=200, widget=forms.TextInput({"autocomplete": "name"}))
    line1 = forms.CharField(
        label=FIELD_LABELS["line1"], max_length=200, widget=forms.TextInput({"autocomplete": "address-line1"})
    )
    line2 = forms.CharField(
        label=FIELD_LABELS["line2"],
        max_length=200,
        required=False,
        widget=forms.TextInput({"autocomplete": "address-line2"}),
    )
    city = forms.CharField(
        label=FIELD_LABELS["city"], max_length=100, widget=forms.TextInput({"autocomplete": "address-level2"})
    )
    postal_code = forms.CharField(
        label=FIELD_LABELS["postal_code"], max_length=20, widget=forms.TextInput({"autocomplete": "postal-code"})
    )
    country = forms.RegexField(
        label=FIELD_LABELS["country"],
        regex=r"^[A-Za-z]{2}$",
        max_length=2,
        help_text="Two-letter code, e.g. DE, FR, IT.",
        error_messages={"invalid": "Use a two-letter country code, e.g. DE."},
        widget=forms.TextInput({"autocomplete": "country", "size": 3, "autocapitalize": "characters"}),
    )
    note = forms.CharField(
        label=FIELD_LABELS["note"],
        max_length=500,
        required=False,
        help_text="Optional, up to 500 characters (delivery instructions, a gift message).",
        widget=forms.Textarea({"rows": 3}),
    )

    def clean_country(self) -> str:
        return str(self.cleaned_data["country"]).upper()

    def shipping_address(self) -> ShippingAddress:
        data = self.cleaned_data
        return ShippingAddress(
            name=data["name"],
            line1=data["line1"],
            line2=data["line2"],
            city=data["city"],
            postal_code=data["postal_code"],
            country=data["country"],
        )


def order_details(order: Order) -> dict[str, str]:
    """The editable fields of an order, keyed like the form."""
    return {**order.shipping_address, "note": order.note}


class OrderEditForm(ShippingAddressForm):
    # Lost update: the form names the version it was rendered from; a save from an older version is refused.
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    # What the form showed, signed, so a conflict screen can say what the *other* edit changed.
    original = forms.CharField(required=False, max_length=4000, widget=forms.HiddenInput)

    @classmethod
    def for_order(cls, order: Order, **kwargs: Any) -> OrderEditForm:
        initial = {**order_details(order), "version": order.version, "original": sign_original(order)}
        return cls(initial=initial, **kwargs)

    def original_details(self) -> dict[str, str] | None:
        """The values the form was rendered with, or None when the signature does not check out."""
        try:
            value = signing.loads(self.cleaned_data.get("original") or "", salt=ORIGINAL_SALT)
        except signing.BadSignature:
            return None
        return value if isinstance(value, dict) else None

    def submitted_details(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in EDITABLE_FIELDS}


def sign_original(order: Order) -> str:
    return signing.dumps(order_details(order), salt=ORIGINAL_SALT, compress=True)
