"""Cart and checkout forms. Every write form carries what makes a repeat of it harmless."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings

from cart.selectors import SeenLine, cart_snapshot_parse
from orders.forms import ShippingAddressForm


class AddToCartForm(forms.Form):
    quantity = forms.IntegerField(
        label="Quantity",
        min_value=1,
        max_value=settings.ORDER_MAX_QUANTITY_PER_LINE,
        initial=1,
        widget=forms.NumberInput({"inputmode": "numeric"}),
    )
    # Double submit: one token per rendered form; the server adds the item once per token.
    form_token = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)


class SetQuantityForm(forms.Form):
    quantity = forms.IntegerField(
        label="Quantity",
        min_value=0,
        max_value=settings.ORDER_MAX_QUANTITY_PER_LINE,
        widget=forms.NumberInput({"inputmode": "numeric"}),
    )


class CheckoutForm(ShippingAddressForm):
    # Double submit: one key per rendered form; the same key always lands on the same order.
    idempotency_key = forms.CharField(min_length=1, max_length=255, widget=forms.HiddenInput)
    # Stale tab: the cart version and lines this page showed; the server refuses to order anything else.
    cart_version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    cart_snapshot = forms.CharField(required=False, max_length=4000, widget=forms.HiddenInput)

    def clean_cart_snapshot(self) -> dict[int, SeenLine]:
        try:
            return cart_snapshot_parse(self.cleaned_data.get("cart_snapshot") or "")
        except ValueError:
            raise forms.ValidationError("This checkout page is damaged. Reload it and try again.") from None

    def seen_lines(self) -> dict[int, SeenLine]:
        seen: dict[int, SeenLine] = self.cleaned_data["cart_snapshot"]
        return seen

    def seen_prices(self) -> dict[int, Decimal]:
        return {product_id: line.unit_price for product_id, line in self.seen_lines().items()}
